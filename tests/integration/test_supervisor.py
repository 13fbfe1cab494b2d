"""``dockyard serve`` with several workers: the supervisor it becomes holds nothing of the application, and it
replaces a worker that dies."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.checks import wait_for
from tests.support.server import DockyardServer


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path / "data", env={"DOCKYARD_WORKERS": "2"})
    try:
        srv.start(timeout=180)  # two workers starting on a loaded machine
        yield srv
    finally:
        srv.stop()


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def _mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_the_supervisor_loads_neither_sqlalchemy_nor_the_application(two_workers: DockyardServer) -> None:
    """It prepared the database (SQLAlchemy, the services) before it became the supervisor: none of that stays."""
    assert two_workers.process is not None
    supervisor = two_workers.process.pid
    workers = _children(supervisor)
    assert len(workers) == 2
    # Compiled extension modules show in the memory map once imported: SQLAlchemy's, pydantic's, uvloop's.
    for worker in workers:
        assert "sqlalchemy" in _mapped_files(worker)  # the check can see them where they are loaded
    maps = _mapped_files(supervisor)
    for package in ("sqlalchemy", "pydantic_core", "uvloop", "cryptography"):
        assert package not in maps, f"{package} is loaded in the supervisor"


def test_a_worker_that_dies_is_replaced(two_workers: DockyardServer) -> None:
    assert two_workers.process is not None
    supervisor = two_workers.process.pid
    workers = _children(supervisor)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(
        lambda: len(_children(supervisor) - workers) == 1 and victim not in _children(supervisor),
        timeout=60,
        what="a new worker process",
    )
    assert replaced
    wait_for(
        lambda: two_workers.log_path.read_text(errors="replace").count("Application startup complete") == 3,
        timeout=120,
        what="the new worker to finish its start-up",
    )
    for _ in range(10):  # a connection each: both workers share them out, and every answer is right
        assert httpx.get(f"{two_workers.url}/v2/", timeout=30).status_code == 200
