"""Periodic jobs (``dockyard.jobs.periodic``): one with ``at_start`` runs as soon as a process starts, and the
replicas that start after it within the interval leave it alone."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from dockyard.db.engine import Database
from dockyard.jobs.periodic import PeriodicJob, try_lease
from dockyard.models import MaintenanceLease
from tests.support.jobs import eventually


async def test_at_start_runs_at_once_and_once_per_interval(db: Database) -> None:
    runs: list[int] = []

    async def work() -> None:
        runs.append(1)

    job = PeriodicJob("test.at_start", timedelta(hours=1), work, ttl=timedelta(minutes=5), at_start=True)
    task = asyncio.create_task(job.schedule(db))
    try:

        async def finished() -> bool:
            async with db.read() as conn:
                done = (
                    await conn.execute(
                        select(MaintenanceLease.last_finished_at).where(MaintenanceLease.name == job.name)
                    )
                ).scalar_one_or_none()
            return done is not None

        await eventually(finished, what="the periodic job to run at start")
        assert runs == [1]
        # Another replica starting now would not take the lease: the job finished less than an interval ago.
        assert not await try_lease(db, job.name, job.ttl, due_after=job.interval * 0.9)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
