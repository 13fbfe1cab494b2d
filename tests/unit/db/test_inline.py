"""SQLite connections that run on the loop's thread (``dockyard.db.inline``): a read or a write statement is run
by the caller's thread with no connection thread behind it; COMMIT alone goes to another thread, and a caller
cancelled during a COMMIT gets its cancellation only once the COMMIT has ended."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import text

from dockyard.db import inline
from dockyard.db.engine import Database


class _RecordingConnection(sqlite3.Connection):
    """Records which thread ran each COMMIT and how long it took; ``delay`` makes a COMMIT slow."""

    delay: ClassVar[float] = 0.0
    commits: ClassVar[list[tuple[int, float, float]]] = []

    def commit(self) -> None:
        started = time.monotonic()
        time.sleep(self.delay)
        super().commit()
        type(self).commits.append((threading.get_ident(), started, time.monotonic()))


@pytest.fixture
def committer() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(1, thread_name_prefix="test-commit")
    yield executor
    executor.shutdown()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    async with database.write() as conn:
        await conn.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    try:
        yield database
    finally:
        await database.close()


async def test_reads_and_writes_start_no_connection_thread(db: Database) -> None:
    async def read_and_write(k: int) -> None:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t (k, v) VALUES (:k, 'x')"), {"k": k})
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM t WHERE k = :k"), {"k": k})).scalar_one() == 1

    await asyncio.gather(*(read_and_write(k) for k in range(20)))  # several connections of the pool at once
    async with db.read() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 20
    # aiosqlite runs each connection in a thread of its own (named after its target).
    assert not [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


async def test_a_commit_does_not_wait_for_the_loops_default_executor(db: Database) -> None:
    """Work that holds every thread of the default executor while it waits for the loop (a layer scan reading its
    blob through ``layers.bridge``) must not hold up a COMMIT, which holds the writer gate."""
    loop = asyncio.get_running_loop()
    release = threading.Event()
    blockers = [loop.run_in_executor(None, release.wait, 5) for _ in range(32)]  # the default has ≤ 32 threads
    try:
        async with asyncio.timeout(3):
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO t (k, v) VALUES (1, 'x')"))
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT v FROM t WHERE k = 1"))).scalar_one() == "x"
    finally:
        release.set()
        await asyncio.gather(*blockers)


async def test_a_statement_runs_on_the_loop_thread_and_commit_on_another(
    tmp_path: Path, committer: ThreadPoolExecutor
) -> None:
    _RecordingConnection.commits = []
    connection = await inline.connect(
        str(tmp_path / "y.db"), committer=committer, factory=_RecordingConnection, isolation_level=None
    )
    try:
        cursor = await connection.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        await cursor.close()
        await connection.commit()  # autocommit mode, no transaction open: nothing to commit, no thread
        assert _RecordingConnection.commits == []
        for statement in ("BEGIN IMMEDIATE", "INSERT INTO t (k) VALUES (1)"):
            await (await connection.execute(statement)).close()
        await connection.commit()
        [(thread, _, _)] = _RecordingConnection.commits
        assert thread != threading.get_ident()
        async with connection.execute("SELECT k FROM t") as rows:
            assert list(await rows.fetchall()) == [(1,)]
    finally:
        await connection.close()


async def test_a_caller_cancelled_during_commit_returns_once_the_commit_has_ended(
    tmp_path: Path, committer: ThreadPoolExecutor
) -> None:
    _RecordingConnection.commits = []
    _RecordingConnection.delay = 0.3
    connection = await inline.connect(
        str(tmp_path / "z.db"), committer=committer, factory=_RecordingConnection, isolation_level=None
    )
    try:
        await (await connection.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")).close()
        await (await connection.execute("BEGIN IMMEDIATE")).close()
        await (await connection.execute("INSERT INTO t (k) VALUES (1)")).close()
        committing: asyncio.Task[Any] = asyncio.create_task(connection.commit())
        await asyncio.sleep(0.05)
        committing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await committing
        cancelled_at = time.monotonic()
        [(_, _, ended)] = _RecordingConnection.commits
        assert ended <= cancelled_at  # the connection was free again before the caller saw its cancellation
        assert not connection._conn.in_transaction
        async with connection.execute("SELECT k FROM t") as rows:
            assert list(await rows.fetchall()) == [(1,)]
    finally:
        _RecordingConnection.delay = 0.0
        await connection.close()


async def test_a_closed_connection_refuses_calls(tmp_path: Path, committer: ThreadPoolExecutor) -> None:
    connection = await inline.connect(str(tmp_path / "w.db"), committer=committer)
    await connection.close()
    with pytest.raises(ValueError, match=r"no active connection|closed"):
        await connection.execute("SELECT 1")
