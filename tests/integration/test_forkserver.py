"""The test fork server (``tests/support/forkserver.py``) runs a command as ``python -m dockyard.cli.main`` would:
the request's environment and nothing of the test process's settings, its output in the log, its exit status
(signals as ``Popen`` reports them), a session of its own; a command run to its end (``ForkServer.run``) gives what
``subprocess.run`` would, reads its input and is killed at its timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import forkserver
from tests.support.ports import free_port
from tests.support.server import REPO_ROOT


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


def test_a_command_run_to_its_end_is_what_subprocess_run_gives(forks: forkserver.ForkServer, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "DOCKYARD_DATA_DIR": str(tmp_path / "data")}
    for args in (["whoami"], ["no-such-command"]):
        forked = forks.run(args, env=env, cwd=REPO_ROOT, input=None, timeout=60)
        fresh = subprocess.run(
            [sys.executable, "-m", "dockyard.cli.main", *args],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.returncode == 2
    assert forked.stdout == ""
    assert "No such command" in forked.stderr


def test_a_command_reads_its_input_and_is_killed_at_its_timeout(forks: forkserver.ForkServer, tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "DOCKYARD_DATA_DIR": str(tmp_path / "data")}
    prefix = tmp_path / "ops"
    made = forks.run(
        ["key", "generate", "--output-prefix", str(prefix), "--password-stdin", "--json"],
        env=env,
        cwd=REPO_ROOT,
        input="s3cret\n",
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["public_key"] == str(prefix) + ".pub"
    assert b"ENCRYPTED SIGSTORE PRIVATE KEY" in (tmp_path / "ops.key").read_bytes()
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        forks.run(["serve", "--port", str(free_port()), "--open"], env=env, cwd=REPO_ROOT, input=None, timeout=1)
    assert time.monotonic() - started < 30


def test_a_child_on_a_reaped_childs_pid_is_not_taken_for_it(forks: forkserver.ForkServer, tmp_path: Path) -> None:
    """The system gives the PID of a reaped child to a later process (pid_max is 32768 here; a suite run starts
    more): the fork server's statuses are per child it started, not per PID. The test has the kernel hand the old
    PID out again (``ns_last_pid``, root only) to a server the fork server starts next."""
    last_pid = Path("/proc/sys/kernel/ns_last_pid")
    if not os.access(last_pid, os.W_OK):
        pytest.skip("setting the next PID takes root")
    env = {"PATH": os.environ["PATH"], "DOCKYARD_DATA_DIR": str(tmp_path / "data")}
    first = forks.spawn(["whoami"], env=env, cwd=REPO_ROOT, log_path=tmp_path / "first.log")
    assert first.wait(timeout=60) == 0
    for attempt in range(50):  # another process of the machine may take the PID first: try again
        last_pid.write_text(str(first.pid - 1))
        args = ["serve", "--port", str(free_port()), "--open"]
        second = forks.spawn(args, env=env, cwd=REPO_ROOT, log_path=tmp_path / f"second-{attempt}.log")
        if second.pid == first.pid:
            break
        second.kill()
        second.wait(timeout=30)
    else:
        pytest.fail(f"the kernel never handed out PID {first.pid} again")
    assert second.poll() is None  # running: not the status the first child left under that PID
    assert first.poll() == 0
    second.kill()
    assert second.wait(timeout=30) == -signal.SIGKILL
