"""SQLite connections for the async engine that run each call on the calling thread (the event loop's) — all but
COMMIT.

``aiosqlite`` gives every connection a thread of its own and sends each call to it — cursor, execute, fetch,
close: four or five thread hops for a one-statement read, each a queue put, a thread wake-up, a
``call_soon_threadsafe`` through the loop's self-pipe and an epoll wake-up. On this machine kind that was ~1.4 ms
of CPU for a one-row read by primary key, of which SQLite itself takes a few microseconds. ``connect`` below makes
``InlineConnection``\\ s, which ``aiosqlite``'s cursor and SQLAlchemy's adapter use unchanged but whose calls run
at once: a read costs what SQLite and SQLAlchemy cost.

Nothing they run waits on the loop's thread: in WAL mode a reader never waits for a writer, and a write
transaction begins (``BEGIN IMMEDIATE``) only once its process holds the writer gate
(``dockyard.db.writer.WriterGate``), so SQLite's lock is free and its busy handler never sleeps. A COMMIT may
fsync the WAL (``synchronous=FULL``) or run a checkpoint: it alone goes to a thread (one hop per write
transaction) — of an executor of its own (``Database`` gives one per engine), not the loop's default one, where
threads can all be held by work that waits for the loop (``layers.bridge.through_thread``) and a COMMIT holding
the writer gate would wait behind them. A statement's own SQLite time is spent on the loop, as SQLAlchemy's
processing of its rows is.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Generator
from concurrent.futures import Executor
from functools import partial
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")


class _RunAtOnce:
    """Stands in for the queue of calls to a connection's thread: SQLAlchemy's adapter puts some calls (setting
    the isolation level) on it directly, with a future to answer."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is None:
                raise
            future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An ``aiosqlite.Connection`` without its thread: each call runs on the caller's thread when awaited."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int, committer: Executor) -> None:
        super().__init__(connector, iter_chunk_size)
        self._tx = _RunAtOnce()  # type: ignore[assignment]
        self._committer = committer

    async def _execute(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self) -> Generator[Any, None, InlineConnection]:
        return self._connect().__await__()

    async def commit(self) -> None:
        """COMMIT in a thread of ``committer``: it may fsync the WAL (``synchronous=FULL``) or run a checkpoint,
        which must not stop the loop. Outside a transaction (a read in autocommit mode) there is nothing to commit
        and no thread hop."""
        connection = self._conn
        if not connection.in_transaction:
            return
        committed = asyncio.get_running_loop().run_in_executor(self._committer, connection.commit)
        try:
            await asyncio.shield(committed)
        except asyncio.CancelledError:
            # The caller was cancelled (a client went away): the connection is not used again — nor closed —
            # until its COMMIT has ended in the thread, as aiosqlite's one thread per connection ensured.
            while not committed.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(committed)
            raise

    def stop(self) -> None:  # nothing to wait for: no thread
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def connect(database: str, iter_chunk_size: int = 64, *, committer: Executor, **kwargs: Any) -> InlineConnection:
    """``aiosqlite.connect``'s signature, for SQLAlchemy's ``async_creator_fn`` connect argument (with
    ``committer`` bound by ``functools.partial``). The connection may be closed from another thread than the one
    that opened it (a pool disposed at shutdown)."""
    kwargs["check_same_thread"] = False
    return InlineConnection(partial(sqlite3.connect, database, **kwargs), iter_chunk_size, committer)
