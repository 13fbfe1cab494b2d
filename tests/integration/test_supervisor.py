"""``dockyard serve`` with several workers: the supervisor it becomes holds nothing of the application, it replaces
a worker that dies, and its signals add a worker (SIGTTIN), retire one (SIGTTOU) and replace them all one by one
(SIGHUP) while the server keeps answering. The tests share one server (each leaves two workers running)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.checks import wait_for
from tests.support.server import DockyardServer


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path_factory.mktemp("supervisor") / "data", env={"DOCKYARD_WORKERS": "2"})
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
    started = _started(two_workers)
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(
        lambda: len(_children(supervisor) - workers) == 1 and victim not in _children(supervisor),
        timeout=60,
        what="a new worker process",
    )
    assert replaced
    _wait_started(two_workers, started + 1, "the new worker to finish its start-up")
    _all_answer(two_workers)


def _started(server: DockyardServer) -> int:
    return server.log_path.read_text(errors="replace").count("Application startup complete")


def _wait_started(server: DockyardServer, count: int, what: str) -> None:
    wait_for(lambda: _started(server) >= count, timeout=120, what=what)


def _all_answer(server: DockyardServer) -> None:
    for _ in range(10):  # a connection each: the workers share them out, and every answer is right
        assert httpx.get(f"{server.url}/v2/", timeout=30).status_code == 200


def test_signals_add_retire_and_replace_workers(two_workers: DockyardServer) -> None:
    assert two_workers.process is not None
    supervisor = two_workers.process.pid
    first = _children(supervisor)
    assert len(first) == 2
    started = _started(two_workers)

    os.kill(supervisor, signal.SIGTTIN)  # one more
    wait_for(lambda: len(_children(supervisor)) == 3, timeout=60, what="a third worker")
    _wait_started(two_workers, started + 1, "the third worker's start-up")
    added = _children(supervisor) - first
    _all_answer(two_workers)

    os.kill(supervisor, signal.SIGTTOU)  # one fewer: the newest goes, gracefully
    wait_for(lambda: _children(supervisor) == first, timeout=60, what="the third worker to be retired")
    assert added.isdisjoint(_children(supervisor))
    _all_answer(two_workers)

    os.kill(supervisor, signal.SIGHUP)  # a rolling restart: each replaced once its successor has started

    def replaced() -> bool:
        now = _children(supervisor)
        return len(now) == 2 and now.isdisjoint(first)

    wait_for(replaced, timeout=180, what="both workers replaced")
    _wait_started(two_workers, started + 3, "the replacements' start-up")
    _all_answer(two_workers)
    log = two_workers.log_tail(200)
    assert "did not start" not in log
