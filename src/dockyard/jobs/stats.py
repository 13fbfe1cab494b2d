"""What the job queue looks like now, for the metrics and the site-admin page: unfinished jobs by state (and kind)
and the age of the oldest due one, recent failures, and putting a dead job back in the queue. The counts are index
ranges (``ix_jobs_state_run_at``, ``ix_jobs_finished_at``), whatever the number of finished jobs kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.jobs.queue import DEAD, FAILED, FINISHED, QUEUED, UNFINISHED
from dockyard.models import Job
from dockyard.models.base import utcnow


@dataclass(frozen=True)
class QueueStats:
    depth: dict[str, int]  # state (queued, running) → jobs
    oldest_due_seconds: float  # how long the oldest queued, due job has waited (0 when none)


async def queue_stats(db: Database) -> QueueStats:
    now = utcnow()
    async with db.read(consistent=True) as conn:
        rows = await conn.execute(select(Job.state, func.count()).where(Job.state.in_(UNFINISHED)).group_by(Job.state))
        depth = {str(state): int(count) for state, count in rows}
        oldest = await conn.scalar(select(func.min(Job.run_at)).where(Job.state == QUEUED, Job.run_at <= now))
    return QueueStats(depth, max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)


@dataclass(frozen=True)
class KindCount:
    kind: str
    state: str
    jobs: int
    oldest_run_at: datetime | None  # the earliest due time among them (queued: how long the oldest has waited)


@dataclass(frozen=True)
class FailedJob:
    id: int
    kind: str
    state: str  # failed | dead
    attempts: int
    last_error: str | None
    finished_at: datetime | None


async def counts_by_kind(db: Database, finished_since: datetime) -> list[KindCount]:
    """Unfinished jobs by kind and state, and the jobs that finished since ``finished_since`` by kind and outcome
    (both index ranges: ``ix_jobs_state_run_at`` and ``ix_jobs_finished_at``)."""
    async with db.read(consistent=True) as conn:
        unfinished = await conn.execute(
            select(Job.kind, Job.state, func.count(), func.min(Job.run_at))
            .where(Job.state.in_(UNFINISHED))
            .group_by(Job.kind, Job.state)
        )
        finished = await conn.execute(
            select(Job.kind, Job.state, func.count())
            .where(Job.finished_at >= finished_since, Job.state.in_(FINISHED))
            .group_by(Job.kind, Job.state)
        )
        rows = [KindCount(str(k), str(s), int(n), oldest) for k, s, n, oldest in unfinished]
        rows += [KindCount(str(k), str(s), int(n), None) for k, s, n in finished]
    return sorted(rows, key=lambda row: (row.kind, row.state))


async def recent_failures(db: Database, limit: int = 20) -> list[FailedJob]:
    """The latest jobs that failed or died, newest first, with their last error."""
    async with db.read(consistent=True) as conn:
        rows = await conn.execute(
            select(Job.id, Job.kind, Job.state, Job.attempts, Job.last_error, Job.finished_at)
            .where(Job.state.in_((FAILED, DEAD)), Job.finished_at.is_not(None))
            .order_by(Job.finished_at.desc(), Job.id.desc())
            .limit(limit)
        )
        return [FailedJob(r.id, r.kind, r.state, r.attempts, r.last_error, r.finished_at) for r in rows]


async def requeue_dead(conn: AsyncConnection, job_id: int) -> str | None:
    """Give a ``dead`` job one more attempt, due now and without its horizon (inside ``conn``'s transaction).
    Returns its kind, or None when there is no such dead job. Raises ``IntegrityError`` when an unfinished job
    holds its dedupe key."""
    row = (await conn.execute(select(Job.kind, Job.attempts).where(Job.id == job_id, Job.state == DEAD))).first()
    if row is None:
        return None
    await conn.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == DEAD)
        .values(
            state=QUEUED,
            run_at=utcnow(),
            max_attempts=row.attempts + 1,
            expires_at=None,
            finished_at=None,
            lease_owner=None,
            lease_until=None,
        )
    )
    return str(row.kind)
