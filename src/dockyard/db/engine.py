"""The Database: one async engine and the kinds of unit of work, ``read()``, ``write()`` and ``run_unit()``.

On SQLite a write unit of work starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the
database lock instead of failing half-way with SQLITE_BUSY; readers never block writers (WAL mode).
On PostgreSQL both are ordinary READ COMMITTED transactions; conflicting writers lock rows explicitly.

``run_unit(work)`` runs a *synchronous* unit of work — ``work(conn)`` on a plain ``Connection`` — as one step: on
SQLite in this process's writer thread over a sync driver connection (one thread hop for the whole transaction,
where an async unit pays several per statement, and the writer lock is held for SQLite time only); on PostgreSQL
inside the async engine's greenlet bridge (``AsyncConnection.run_sync``: no thread at all), restarted on a
deadlock as ``run_write`` is. The hot write paths (manifest push, blob commit, mount) are written this way.
Inside such a unit ``await_in_unit(coroutine)`` runs a coroutine (a storage call) on the event loop and waits.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from dockyard.db import inline
from dockyard.db.writer import GroupCommit, WriterGate
from dockyard.db.writer import await_in_unit as await_in_unit

# Jitter from a generator of this module's own: the process-wide `random` state stays untouched (a test
# framework sharing the process, such as Hypothesis, watches it).
_JITTER = random.Random()  # noqa: S311 - jitter only

T = TypeVar("T")
_WRITE_OPTION = "dockyard_write"
_SNAPSHOT_OPTION = "dockyard_snapshot"
_STARTED = "dockyard_statement_started"  # connection info key: when the running statement started
SQLITE_SYNCHRONOUS = ("NORMAL", "FULL")


def _configure_sqlite(sync_engine: Engine, synchronous: str) -> None:
    if synchronous not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"sqlite synchronous must be one of {SQLITE_SYNCHRONOUS}, not {synchronous!r}")

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take over transaction control from pysqlite so that BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed transaction survives the process's crash (kill -9), not a power cut;
        # FULL also fsyncs the WAL at every commit (docs/operations.md).
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        # Reads run in autocommit mode: each statement sees one consistent WAL snapshot, with no BEGIN/ROLLBACK
        # round trips. Units of work that read several rows consistently use write() (or read(consistent=True)).
        options = conn.get_execution_options()
        if options.get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif options.get(_SNAPSHOT_OPTION):
            conn.exec_driver_sql("BEGIN")


_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def _is_transient(exc: DBAPIError) -> bool:
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        if getattr(error, "sqlstate", None) in _TRANSIENT_SQLSTATES:
            return True
    return False


def _create_private(path: Path) -> None:
    """Create the SQLite file (and its directory) readable by this user only, before SQLite does: SQLite creates
    a database with the umask's mode, and its ``-wal`` and ``-shm`` files with the mode of the database."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


class Database:
    """Owns the engine. ``read()``/``write()`` yield a connection inside one transaction."""

    def __init__(self, url: str, *, pool_size: int = 8, echo: bool = False, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        db_path = url.split("///", 1)[-1] if self.is_sqlite else ""
        if db_path == ":memory:":
            db_path = ""
        if self.is_sqlite:
            if db_path:
                _create_private(Path(db_path))
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            # Every write unit of work ends in COMMIT or ROLLBACK and reads are autocommit, so a connection
            # returns to the pool clean; skipping the reset saves a thread hop per request.
            kwargs["pool_reset_on_return"] = None
        else:
            kwargs.update(
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                connect_args={"server_settings": {"statement_timeout": "30000"}},
            )
        self._committer: ThreadPoolExecutor | None = None
        if self.is_sqlite and db_path:
            # Connections that run each call on the loop's thread but COMMIT (dockyard.db.inline): the writer gate
            # below keeps a write from ever waiting for SQLite's lock there.
            self._committer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dockyard-commit")
            kwargs["connect_args"] = {"async_creator_fn": partial(inline.connect, committer=self._committer)}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine.sync_engine, sqlite_synchronous)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._writer_gate = WriterGate(Path(f"{db_path}.writelock")) if self.is_sqlite and db_path else None
        self._snapshot_engine = self.engine.execution_options(**{_SNAPSHOT_OPTION: True})
        # SQLite's synchronous units: one sync connection, used only by one writer thread (it is the writer).
        self._unit_base: Engine | None = None
        self._group: GroupCommit | None = None
        if self._writer_gate is not None:
            sync_url = make_url(url).set(drivername="sqlite+pysqlite")
            engine = create_engine(
                sync_url,
                echo=echo,
                pool_size=1,
                max_overflow=0,
                pool_reset_on_return=None,
                connect_args={"check_same_thread": False},  # created in the writer thread, closed from the loop's
            )
            _configure_sqlite(engine, sqlite_synchronous)
            self._unit_base = engine
            self._group = GroupCommit(
                engine.execution_options(**{_WRITE_OPTION: True}),
                self._writer_gate,
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockyard-writer"),
            )

    def observe_statements(self, observe: Callable[[float], None]) -> None:
        """Call ``observe(seconds)`` after each statement, with the time from the cursor's execute to its return
        (for the statement-latency metric; two clock reads and a dict entry per statement)."""

        def before(conn: Connection, *_: object) -> None:
            conn.info[_STARTED] = time.perf_counter()

        def after(conn: Connection, *_: object) -> None:
            started = conn.info.pop(_STARTED, None)
            if started is not None:
                observe(time.perf_counter() - started)

        for engine in (self.engine.sync_engine, self._unit_base):
            if engine is not None:
                event.listen(engine, "before_cursor_execute", before)
                event.listen(engine, "after_cursor_execute", after)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def read(self, *, consistent: bool = False) -> AsyncIterator[AsyncConnection]:
        """A read-only unit of work. On SQLite each statement is its own snapshot unless ``consistent``."""
        engine = self._snapshot_engine if consistent else self.engine
        async with engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; commits on normal exit, rolls back on an exception."""
        if self._writer_gate is not None:
            async with self._writer_gate.hold(), self._write_engine.connect() as conn, conn.begin():
                yield conn
            return
        async with self._write_engine.connect() as conn, conn.begin():
            yield conn

    async def run_write(self, work: Callable[[AsyncConnection], Awaitable[T]], *, attempts: int = 4) -> T:
        """Run ``work`` in a write transaction; start it again from scratch if PostgreSQL aborted it for a
        deadlock or a serialization failure (SQLSTATE 40P01 / 40001). ``work`` must have no effects outside
        the transaction before it commits."""
        for attempt in range(attempts):
            try:
                async with self.write() as conn:
                    return await work(conn)
            except DBAPIError as exc:
                if attempt == attempts - 1 or not _is_transient(exc):
                    raise
                await asyncio.sleep(0.005 * 2**attempt * (1 + _JITTER.random()))
        raise AssertionError("unreachable")

    async def run_unit(self, work: Callable[[Connection], T], *, attempts: int = 4) -> T:
        """Run the synchronous unit of work ``work(conn)`` in one write transaction (see the module docstring). On
        PostgreSQL it is restarted from scratch after a deadlock or serialization failure, up to ``attempts``
        times: a unit with effects outside the database (a storage call) passes ``attempts=1``.

        On SQLite units that queue while the writer is busy are committed together (``_group.GroupCommit``): each
        in a savepoint of one transaction, answered only once that transaction has committed."""
        if self._group is None:

            async def bridged(conn: AsyncConnection) -> T:
                return await conn.run_sync(work)

            return await self.run_write(bridged, attempts=attempts)
        return await self._group.run(work)

    async def check(self) -> None:
        """Raise unless the DB answers a query on the migrated schema."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT version_num FROM alembic_version"))

    async def close(self) -> None:
        await self.engine.dispose()
        if self._committer is not None:
            self._committer.shutdown()
        if self._group is not None:
            await self._group.close()
        if self._writer_gate is not None:
            self._writer_gate.close()
