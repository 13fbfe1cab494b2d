"""SQLite's writer: the gate that queues writers (``WriterGate``), and ``GroupCommit``, which runs synchronous
units of work in the process's one writer thread and commits the units that queued together in one transaction.

Group commit: while the writer thread runs one transaction, the units that arrive wait in a queue; the next
transaction takes all of them (up to ``GROUP_MAX``), each inside a savepoint, and commits once. One BEGIN, one
COMMIT (and with ``sqlite_synchronous=full`` one WAL fsync), one lock hand-over and one thread hop serve the
whole group. A unit that raises is rolled back to its savepoint and only its caller sees the error; every caller
is answered after the COMMIT that made its unit durable (or with the error that kept it from committing). A unit
alone in the queue runs exactly as it would without grouping: its own transaction, no savepoint.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.util import await_only

T = TypeVar("T")
GROUP_MAX = 64  # units per transaction: bounds how long the first of a group waits for the last
_SAVEPOINT = "dockyard_unit"


class WriterGate:
    """Queues SQLite writers promptly: an asyncio lock in this process, an ``flock`` across processes.

    SQLite's own busy handler makes a blocked writer sleep and poll (up to 100 ms between tries), which under
    many concurrent pushes costs far more than the transactions themselves. Waiting here instead wakes the next
    writer the moment the lock is released.
    """

    def __init__(self, path: Path) -> None:
        self.local = asyncio.Lock()  # this process's writers, async and sync units alike (flock is per process)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self.local:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                await asyncio.to_thread(fcntl.flock, self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def hold_blocking(self) -> None:
        """Take the cross-process lock from a thread (the caller holds ``local``); ``release`` gives it back."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


_unit_state = threading.local()  # the event loop of the unit the writer thread is running, if any


def await_in_unit(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` from inside a ``run_unit`` unit of work and return its result: on the event loop when the
    unit runs in the SQLite writer thread, through SQLAlchemy's greenlet bridge when it runs in ``run_sync``."""
    loop: asyncio.AbstractEventLoop | None = getattr(_unit_state, "loop", None)
    if loop is None:
        return await_only(coroutine)
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


@dataclass(eq=False, slots=True)
class _Unit:
    work: Callable[[Connection], Any]
    answer: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


@dataclass(eq=False)
class GroupCommit:
    """Runs synchronous units of work in the writer thread ``thread`` over ``engine`` (whose connections begin
    with ``BEGIN IMMEDIATE``), each after ``gate``; see the module docstring."""

    engine: Engine
    gate: WriterGate
    thread: ThreadPoolExecutor
    _queue: list[_Unit] = field(default_factory=list)
    _drainer: asyncio.Task[None] | None = None

    async def run(self, work: Callable[[Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        unit = _Unit(work, loop.create_future())
        self._queue.append(unit)
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain(), name="db.group-commit")
        return cast(T, await unit.answer)  # a caller cancelled before its group formed has its unit skipped

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                async with self.gate.local:
                    group = [unit for unit in self._queue[:GROUP_MAX] if not unit.answer.done()]
                    del self._queue[:GROUP_MAX]
                    if not group:
                        continue
                    failed: Exception | None = None
                    try:
                        # Shielded: once started, the thread runs the group to its COMMIT whatever happens here.
                        await asyncio.shield(loop.run_in_executor(self.thread, self._run_group, loop, group))
                    except Exception as exc:  # the gate, the connection or the transaction failed: nothing committed
                        failed = exc
                    for unit in group:
                        if unit.answer.done():
                            continue
                        if unit.error is not None:
                            unit.answer.set_exception(unit.error)
                        elif failed is not None:
                            unit.answer.set_exception(failed)
                        else:
                            unit.answer.set_result(unit.result)
        finally:
            self._drainer = None

    def _run_group(self, loop: asyncio.AbstractEventLoop, group: list[_Unit]) -> None:
        """In the writer thread: run ``group`` in as few transactions as it takes (one unless SQLite itself
        abandons a transaction), committing each."""
        self.gate.hold_blocking()
        _unit_state.loop = loop
        try:
            if len(group) == 1:
                _alone(self.engine, group[0])
                return
            rest = group
            while rest:
                rest = _together(self.engine, rest)
        finally:
            _unit_state.loop = None
            self.gate.release()

    async def close(self) -> None:
        if self._drainer is not None:
            await asyncio.gather(self._drainer, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(self.thread, self.engine.dispose)
        self.thread.shutdown()


def _alone(engine: Engine, unit: _Unit) -> None:
    try:
        with engine.connect() as conn, conn.begin():
            unit.result = unit.work(conn)
    except Exception as exc:
        unit.error = exc


def _together(engine: Engine, units: list[_Unit]) -> list[_Unit]:
    """Run ``units`` in one transaction, each in a savepoint, and commit. Returns the units still to run if
    SQLite rolled the whole transaction back under one of them (disk full, I/O error): the ones that had run are
    answered with that error, since their changes went with it."""
    with engine.connect() as conn:
        transaction = conn.begin()
        # The savepoints go straight to the driver: SQLAlchemy's own (begin_nested) cost two compiled statements
        # per unit, which is what grouping saves. Units never use nested transactions of their own.
        raw = conn.connection.driver_connection
        assert raw is not None
        done: list[_Unit] = []
        for index, unit in enumerate(units):
            raw.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                unit.result = unit.work(conn)
            except Exception as exc:
                unit.error = exc
                if not raw.in_transaction:  # SQLite abandoned the transaction: everything in it is gone
                    transaction.rollback()
                    for other in done:
                        other.error = exc
                    return units[index + 1 :]
                raw.execute(f"ROLLBACK TO {_SAVEPOINT}")
            else:
                done.append(unit)
            raw.execute(f"RELEASE {_SAVEPOINT}")
        try:
            transaction.commit()
        except Exception as exc:
            for unit in done:
                unit.error = exc
            if raw.in_transaction:  # a failed COMMIT (SQLITE_BUSY, I/O) can leave it open
                raw.execute("ROLLBACK")
    return []
