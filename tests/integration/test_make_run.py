"""``make run`` installs and serves with the embedded default (SQLite + files under the data dir)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import REPO_ROOT, free_port
from tests.support.tools import require_tool

# `make run` is the embedded deployment by definition (no settings: SQLite and files under ./data); the
# scale-out run would repeat the very same test.
pytestmark = pytest.mark.embedded_only


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
        assert "Push an image" in output
        # The first start created the administrator and printed its password once; it logs in.
        match = re.search(r"administrator account 'admin' with password: (\S+)", output)
        assert match is not None, output
        assert httpx.get(f"http://127.0.0.1:{port}/v2/", auth=("admin", match.group(1)), timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/v2/", auth=("admin", "wrong"), timeout=10).status_code == 401
        assert (tmp_path / "data" / "dockyard.db").exists()
        assert (tmp_path / "data" / "storage").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
