"""The test fork server (``tests/support/forkserver.py``) runs a command as ``python -m dockyard.cli.main`` would:
the request's environment and nothing of the test process's settings, its output in the log, its exit status
(signals as ``Popen`` reports them), a session of its own."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import forkserver
from tests.support.server import REPO_ROOT, free_port


@pytest.fixture(scope="module")
def forks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[forkserver.ForkServer]:
    server = forkserver.ForkServer(REPO_ROOT, tmp_path_factory.mktemp("forkserver") / "forkserver.log")
    yield server
    server.close()


def test_a_command_gets_the_requests_environment_and_output(forks: forkserver.ForkServer, tmp_path: Path) -> None:
    log = tmp_path / "whoami.log"
    env = {"PATH": os.environ["PATH"], "DOCKYARD_DATA_DIR": str(tmp_path / "elsewhere")}
    process = forks.spawn(["whoami"], env=env, cwd=REPO_ROOT, log_path=log)
    assert process.wait(timeout=60) == 0
    assert f"working on the data directory {tmp_path / 'elsewhere'}" in log.read_text()


def test_exit_statuses_are_reported_as_popen_does(forks: forkserver.ForkServer, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "DOCKYARD_DATA_DIR": str(tmp_path / "data")}
    usage = forks.spawn(["no-such-command"], env=env, cwd=REPO_ROOT, log_path=tmp_path / "usage.log")
    assert usage.wait(timeout=60) == 2  # click's usage error
    assert "No such command" in (tmp_path / "usage.log").read_text()

    serving = forks.spawn(
        ["serve", "--port", str(free_port()), "--open"], env=env, cwd=REPO_ROOT, log_path=tmp_path / "serve.log"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        serving.wait(timeout=0.5)
    assert os.getpgid(serving.pid) == serving.pid  # a session (and process group) of its own
    serving.kill()
    assert serving.wait(timeout=30) == -signal.SIGKILL
    assert serving.poll() == -signal.SIGKILL
    assert "RuntimeWarning" not in (tmp_path / "serve.log").read_text()  # the CLI ran as __main__, once
