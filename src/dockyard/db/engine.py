"""The Database: one async engine and the two kinds of unit of work, ``read()`` and ``write()``.

On SQLite a write unit of work starts with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the
database lock instead of failing half-way with SQLITE_BUSY; readers never block writers (WAL mode).
On PostgreSQL both are ordinary READ COMMITTED transactions; conflicting writers lock rows explicitly.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

T = TypeVar("T")
_WRITE_OPTION = "dockyard_write"
_SNAPSHOT_OPTION = "dockyard_snapshot"


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take over transaction control from pysqlite so that BEGIN IMMEDIATE is possible.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
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


class _WriterGate:
    """Queues SQLite writers promptly: an asyncio lock in this process, an ``flock`` across processes.

    SQLite's own busy handler makes a blocked writer sleep and poll (up to 100 ms between tries), which under
    many concurrent pushes costs far more than the transactions themselves. Waiting here instead wakes the next
    writer the moment the lock is released.
    """

    def __init__(self, path: Path) -> None:
        self._local = asyncio.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._local:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                await asyncio.to_thread(fcntl.flock, self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def _create_private(path: Path) -> None:
    """Create the SQLite file (and its directory) readable by this user only, before SQLite does: SQLite creates
    a database with the umask's mode, and its ``-wal`` and ``-shm`` files with the mode of the database."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


class Database:
    """Owns the engine. ``read()``/``write()`` yield a connection inside one transaction."""

    def __init__(self, url: str, *, pool_size: int = 8, echo: bool = False) -> None:
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
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._writer_gate = _WriterGate(Path(f"{db_path}.writelock")) if self.is_sqlite and db_path else None
        self._snapshot_engine = self.engine.execution_options(**{_SNAPSHOT_OPTION: True})

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
                await asyncio.sleep(0.005 * 2**attempt * (1 + random.random()))  # noqa: S311 - jitter only
        raise AssertionError("unreachable")

    async def check(self) -> None:
        """Raise unless the DB answers a query on the migrated schema."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT version_num FROM alembic_version"))

    async def close(self) -> None:
        await self.engine.dispose()
        if self._writer_gate is not None:
            self._writer_gate.close()
