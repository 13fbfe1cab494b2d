"""Group commit on SQLite: units of work that queue behind a busy writer commit together, each in a savepoint;
a unit that fails takes nothing of the others with it, and every caller is answered after the COMMIT."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from dockyard.db.engine import Database
from dockyard.errors import Conflict


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    try:
        yield database
    finally:
        await database.close()


def _commits(db: Database) -> list[int]:
    """One entry per COMMIT the writer thread's engine issues."""
    seen: list[int] = []
    assert db._unit_base is not None

    @event.listens_for(db._unit_base, "commit")
    def counted(_conn: Connection) -> None:
        seen.append(1)

    return seen


async def _rows(db: Database) -> dict[int, str]:
    async with db.read() as conn:
        return {int(k): str(v) for k, v in (await conn.execute(text("SELECT k, v FROM t"))).all()}


def _insert(k: int) -> Any:
    def work(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (k, v) VALUES (:k, :v)"), {"k": k, "v": f"row {k}"})
        return k

    return work


async def _hold_writer(db: Database) -> tuple[threading.Event, asyncio.Task[int]]:
    """Start a unit that keeps the writer thread busy until the returned event is set."""
    release = threading.Event()

    def slow(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (k, v) VALUES (0, 'first')"))
        release.wait(10)
        return 0

    first = asyncio.create_task(db.run_unit(slow))
    await asyncio.sleep(0.05)  # it is running in the writer thread now
    return release, first


async def test_queued_units_commit_together(db: Database) -> None:
    commits = _commits(db)
    release, first = await _hold_writer(db)
    queued = [asyncio.create_task(db.run_unit(_insert(k))) for k in range(1, 11)]
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in queued)  # nobody is answered before its COMMIT
    release.set()
    assert await first == 0
    assert await asyncio.gather(*queued) == list(range(1, 11))
    assert len(commits) == 2  # the first unit alone, then the ten that queued behind it in one transaction
    assert sorted(await _rows(db)) == list(range(11))


async def test_a_failing_unit_takes_nothing_of_the_others_with_it(db: Database) -> None:
    release, first = await _hold_writer(db)

    def half_then_fail(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t (k, v) VALUES (100, 'half')"))
        raise Conflict("operation", "refused after a write")

    def duplicate(conn: Connection) -> None:  # the database refuses it: a constraint violation
        conn.execute(text("INSERT INTO t (k, v) VALUES (1, 'again')"))

    before = asyncio.create_task(db.run_unit(_insert(1)))
    failing = asyncio.create_task(db.run_unit(half_then_fail))
    violating = asyncio.create_task(db.run_unit(duplicate))
    after = asyncio.create_task(db.run_unit(_insert(2)))
    await asyncio.sleep(0.05)
    release.set()
    await first
    assert await before == 1
    assert await after == 2
    with pytest.raises(Conflict):
        await failing
    with pytest.raises(Exception, match="UNIQUE"):
        await violating
    assert await _rows(db) == {0: "first", 1: "row 1", 2: "row 2"}  # no 'half', no 'again'


async def test_a_caller_cancelled_while_queued_has_its_unit_skipped(db: Database) -> None:
    release, first = await _hold_writer(db)
    cancelled = asyncio.create_task(db.run_unit(_insert(5)))
    kept = asyncio.create_task(db.run_unit(_insert(6)))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    release.set()
    await first
    assert await kept == 6
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert sorted(await _rows(db)) == [0, 6]


async def test_a_unit_alone_runs_in_its_own_transaction(db: Database) -> None:
    commits = _commits(db)
    for k in range(1, 4):
        assert await db.run_unit(_insert(k)) == k
    assert len(commits) == 3

    def write_then_fail(conn: Connection) -> None:
        _insert(9)(conn)
        raise Conflict("operation", "refused after a write")

    with pytest.raises(Conflict):
        await db.run_unit(write_then_fail)
    assert sorted(await _rows(db)) == [1, 2, 3]
