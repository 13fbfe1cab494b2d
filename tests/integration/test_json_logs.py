"""Every line ``dockyard serve`` writes on stderr is one JSON object — Dockyard's, uvicorn's and Alembic's — and
the access log names the actor, the user agent and the repository; a client probing TLS on the plain-HTTP port
leaves no warning."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.oci import push_image, unique_name
from tests.support.ports import free_port
from tests.support.server import REPO_ROOT, Server

pytestmark = pytest.mark.embedded_only  # logging is the same on both backends

TLS_CLIENT_HELLO = bytes.fromhex("16030100f8010000f40303") + os.urandom(32) + b"\x00" * 40


def test_stderr_is_json_lines(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DOCKYARD_DATA_DIR": str(tmp_path / "data"),
        "DOCKYARD_ADMIN_PASSWORD": Server.ADMIN_PASSWORD,
        "DOCKYARD_WORKERS": "1",
    }
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "dockyard.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            cwd=REPO_ROOT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError(stderr_path.read_text())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as probe:
            probe.sendall(TLS_CLIENT_HELLO)  # what a client trying https:// first sends
            probe.recv(1024)
        repo = f"admin/{unique_name()}"
        admin = ("admin", Server.ADMIN_PASSWORD)
        with httpx.Client(base_url=url, auth=admin, timeout=60, headers={"User-Agent": "json-log-test/1.0"}) as c:
            push_image(c, repo, "v1")
            assert c.get(f"/v2/{repo}/manifests/v1").status_code == 200
        time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=60)
    lines = stderr_path.read_text().splitlines()
    records = []
    for line in lines:
        record = json.loads(line)  # every line: one JSON object
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        records.append(record)
    loggers = {record["logger"] for record in records}
    assert {"dockyard.access", "uvicorn.error"} <= loggers, loggers
    assert any(logger.startswith("alembic") for logger in loggers), loggers
    assert not [record for record in records if "Invalid HTTP request" in record["message"]]
    manifest_get = [
        record
        for record in records
        if record["logger"] == "dockyard.access" and record["method"] == "GET" and record["route"] == "manifests"
    ]
    assert manifest_get, records
    assert manifest_get[0]["actor"] == "admin"
    assert manifest_get[0]["user_agent"] == "json-log-test/1.0"
    assert manifest_get[0]["repository"] == repo
    assert manifest_get[0]["status"] == 200
    assert len(manifest_get[0]["request_id"]) == 16
