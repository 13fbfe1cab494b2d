"""Periodic jobs that run on exactly one replica at a time, coordinated through a lease row in the DB.

Each replica wakes up every ``interval``; the one that takes the lease (an atomic conditional UPDATE, or the
first INSERT) runs the job and records when it finished, so the others skip until the next interval is due.
A replica that dies mid-job holds the lease only until it expires.

A ``PeriodicJob`` names one such job; the job runner runs its own (``jobs.retention``) and those the composition
root passes to ``running_jobs`` (garbage collection, the outbox's retention), in every process that runs jobs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, update

from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.models import MaintenanceLease
from dockyard.models.base import utcnow

# Jitter from a generator of this module's own: the process-wide `random` state stays untouched (a test
# framework sharing the process, such as Hypothesis, watches it).
_JITTER = random.Random()  # noqa: S311 - jitter only

log = logging.getLogger("dockyard.jobs")

HOLDER = uuid.uuid4().hex  # this process


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    """``run`` every ``interval`` on one replica at a time, under the lease ``name`` held for at most ``ttl``.
    ``at_start``: also try once when the process starts (it runs unless a replica finished it less than an
    interval ago), so that processes restarted more often than ``interval`` still get to it."""

    name: str
    interval: timedelta
    run: Callable[[], Awaitable[object]]
    ttl: timedelta
    at_start: bool = False

    async def schedule(self, db: Database) -> None:
        """Forever (see ``run_periodically``); cancel the task to stop."""
        await run_periodically(db, self.name, self.interval, self.run, ttl=self.ttl, at_start=self.at_start)


async def try_lease(db: Database, name: str, ttl: timedelta, *, due_after: timedelta | None = None) -> bool:
    """Take the named lease for ``ttl`` unless another holder has it, or (``due_after``) the job finished less
    than ``due_after`` ago. True if this process now holds it."""
    now = utcnow()
    async with db.write() as conn:
        if await insert_ignore(conn, MaintenanceLease, {"name": name, "holder": HOLDER, "until": now + ttl}):
            return True
        conditions = [MaintenanceLease.name == name, MaintenanceLease.until < now]
        if due_after is not None:
            conditions.append(
                or_(MaintenanceLease.last_finished_at.is_(None), MaintenanceLease.last_finished_at < now - due_after)
            )
        result = await conn.execute(update(MaintenanceLease).where(*conditions).values(holder=HOLDER, until=now + ttl))
        return bool(result.rowcount == 1)


async def finish_lease(db: Database, name: str) -> None:
    now = utcnow()
    async with db.write() as conn:
        await conn.execute(
            update(MaintenanceLease)
            .where(MaintenanceLease.name == name, MaintenanceLease.holder == HOLDER)
            .values(until=now, last_finished_at=now)
        )


async def release_lease(db: Database, name: str) -> None:
    """Give the named lease up without counting the job as done (its schedule stays as it was)."""
    async with db.write() as conn:
        await conn.execute(
            update(MaintenanceLease)
            .where(MaintenanceLease.name == name, MaintenanceLease.holder == HOLDER)
            .values(until=utcnow())
        )


async def run_periodically(
    db: Database,
    name: str,
    interval: timedelta,
    job: Callable[[], Awaitable[object]],
    *,
    ttl: timedelta,
    at_start: bool = False,
) -> None:
    """Forever: every ``interval`` (with jitter; first at once when ``at_start``), run ``job`` if this replica wins
    the lease. Errors are logged."""
    first = at_start
    while True:
        if not first:
            await asyncio.sleep(interval.total_seconds() * _JITTER.uniform(0.9, 1.1))
        first = False
        try:
            if await try_lease(db, name, ttl, due_after=interval * 0.9):
                try:
                    await job()
                finally:
                    await finish_lease(db, name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic job %s failed", name)
