"""Graceful shutdown: SIGTERM lets an in-flight upload finish, then the server exits."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.checks import wait_for
from tests.support.oci import sha256, unique_name
from tests.support.server import DockyardServer


def test_sigterm_finishes_in_flight_upload(fresh_server: DockyardServer) -> None:
    repo = unique_name()
    chunk = b"x" * 256 * 1024
    data = chunk * 24
    started = threading.Event()

    def slow_body() -> Iterator[bytes]:
        for i in range(24):
            if i == 4:
                started.set()
            time.sleep(0.1)
            yield chunk

    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        result: dict[str, httpx.Response] = {}
        thread = threading.Thread(
            target=lambda: result.update(put=client.put(location, params={"digest": sha256(data)}, content=slow_body()))
        )
        thread.start()
        assert started.wait(10)
        assert fresh_server.process is not None
        fresh_server.process.send_signal(signal.SIGTERM)
        thread.join(60)
        assert result["put"].status_code == 201, result["put"].text
        # uvicorn finishes in-flight requests, then re-raises SIGTERM so the exit status says how it stopped.
        assert fresh_server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    fresh_server.process = None
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url) as client:
        assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":  # zombies have exited
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            sock.recv(16)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False  # accepted into a backlog nobody serves, or reset: still not a clean refusal
    return False


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path / "data", env={"DOCKYARD_WORKERS": "2"})
    try:
        srv.start(timeout=180)  # two workers starting on a loaded machine
        yield srv
    finally:
        srv.stop()


def test_sigterm_to_the_parent_stops_listening_at_once_and_stops_every_worker(two_workers: DockyardServer) -> None:
    """SIGTERM to the server's PID alone (not its process group): new connections are refused at once, not
    queued on a socket nobody serves; the in-flight request finishes; then every worker process exits."""
    process = two_workers.process
    assert process is not None
    workers = _descendants(process.pid)
    assert len(workers) >= 2
    started, finished = threading.Event(), threading.Event()
    result: dict[str, int] = {}

    def slow_body() -> Iterator[bytes]:
        for i in range(30):
            if i == 3:
                started.set()
            time.sleep(0.1)
            yield b"x" * 1024
        finished.set()

    with httpx.Client(base_url=two_workers.url, timeout=60) as client:
        location = client.post(f"/v2/{unique_name()}/blobs/uploads/").headers["location"]
        thread = threading.Thread(
            target=lambda: result.update(status=client.patch(location, content=slow_body()).status_code)
        )
        thread.start()
        assert started.wait(10)
        process.send_signal(signal.SIGTERM)
        wait_for(lambda: _refused(two_workers.port), timeout=5, what="the port to refuse connections")
        # Before the fix the port kept accepting (into a backlog nobody served) until the upload had finished.
        assert not finished.is_set(), "new connections were accepted until the in-flight upload finished"
        thread.join(60)
    assert result["status"] == 202
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    wait_for(lambda: not _alive(workers), timeout=10, what="the worker processes to exit")
    two_workers.process = None


def test_workers_exit_when_the_parent_is_killed(two_workers: DockyardServer) -> None:
    """A supervisor that dies without a chance to stop its workers (SIGKILL, OOM killer) takes them along."""
    process = two_workers.process
    assert process is not None
    workers = _descendants(process.pid)
    assert len(workers) >= 2
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    wait_for(lambda: not _alive(workers), timeout=15, what="the orphaned worker processes to exit")
    wait_for(lambda: _refused(two_workers.port), timeout=5, what="the port to close")
    two_workers.process = None
