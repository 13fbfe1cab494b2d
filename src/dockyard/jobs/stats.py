"""What the job queue looks like now, for the metrics: unfinished jobs by state and the age of the oldest due one.
Both are index ranges (``ix_jobs_state_run_at``), whatever the number of finished jobs kept."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from dockyard.db.engine import Database
from dockyard.jobs.queue import QUEUED, UNFINISHED
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
