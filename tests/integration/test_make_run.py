"""``make run`` installs and serves with the embedded default (SQLite + files under the data dir)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.server import REPO_ROOT
from tests.support.tools import require_tool

# `make run` is the embedded deployment by definition (no settings: SQLite and files under ./data); the
# scale-out run would repeat the very same test.
pytestmark = pytest.mark.embedded_only


def printed_steps(output: str) -> list[str]:
    """The commands ``dockyard serve`` printed for a first image."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Push and run a first image"))
    steps = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        steps.append(line.strip())
    return steps


def walk_first_steps(output: str, password: str, tmp_path: Path) -> None:
    """Run the printed commands as printed, from another folder: log in (the password piped, where a person types
    it), push the sample image, pull and run it."""
    login, push, run = printed_steps(output)
    assert login.startswith("podman login --tls-verify=false -u admin 127.0.0.1:")
    assert " sample-image --push admin/hello:latest --data-dir " in push
    assert run.startswith("podman run --rm --tls-verify=false 127.0.0.1:")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pushed = subprocess.run(shlex.split(push), cwd=elsewhere, capture_output=True, text=True, check=False, timeout=120)
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed admin/hello:latest" in pushed.stdout
    if shutil.which("podman") is None:
        return
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    short = Path(tempfile.mkdtemp(prefix="dy-", dir="/tmp"))  # podman refuses a runroot over 50 characters
    podman = [*shlex.split(login)[:1], "--root", str(short / "storage"), "--runroot", str(short / "run")]
    logged_in = subprocess.run(
        [*podman, *shlex.split(login)[1:], "--password-stdin"],
        input=password,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert logged_in.returncode == 0, logged_in.stderr
    ran = subprocess.run(
        [*podman, *shlex.split(run)[1:]], env=env, capture_output=True, text=True, check=False, timeout=180
    )
    subprocess.run([*podman, "system", "reset", "--force"], capture_output=True, check=False, timeout=60)
    shutil.rmtree(short, ignore_errors=True)
    if ran.returncode != 0 and "Operation not permitted" in ran.stderr and "Copying config" in ran.stderr:
        pytest.skip(f"pulled, but this machine does not let podman start containers: {ran.stderr.strip()[-200:]}")
    assert ran.returncode == 0, ran.stderr
    assert "Hello from Dockyard! This sample image runs on linux/" in ran.stdout


def test_make_run_serves(tmp_path: Path) -> None:
    require_tool("make")
    port = free_port()
    env = {**os.environ, "DOCKYARD_PORT": str(port), "DOCKYARD_DATA_DIR": str(tmp_path / "data")}
    env.pop("DOCKYARD_ADMIN_PASSWORD", None)
    with (tmp_path / "make.log").open("wb") as log:
        proc = subprocess.Popen(
            ["make", "run"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "make.log").read_text()
            try:
                # Secure by default: the API root challenges anonymous callers.
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 401:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError((tmp_path / "make.log").read_text())
        output = (tmp_path / "make.log").read_text()
        assert f"http://127.0.0.1:{port}" in output
        # The first start created the administrator and printed its password once; it logs in.
        match = re.search(r"administrator account 'admin' with password: (\S+)", output)
        assert match is not None, output
        password = match.group(1)
        assert httpx.get(f"http://127.0.0.1:{port}/v2/", auth=("admin", password), timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v2/", auth=("admin", "wrong"), timeout=10).status_code == 401
        walk_first_steps(output, password, tmp_path)
        assert (tmp_path / "data" / "dockyard.db").exists()
        assert (tmp_path / "data" / "storage").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
