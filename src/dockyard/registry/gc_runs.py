"""The history of garbage collections (``gc_runs``): each finished collection — scheduled, ``dockyard gc``, or
asked for from the site-admin page (the ``gc.run`` job) — with what it deleted or, a dry run, would delete.

``collect(ctx, …)`` is the one way a collection that is recorded runs: it holds the ``gc`` maintenance lease (the
scheduled collection's), so a collection asked for while another runs waits for it instead of running alongside.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select

from dockyard.db.engine import Database
from dockyard.jobs.periodic import finish_lease, release_lease, try_lease
from dockyard.models import GCRun
from dockyard.models.base import utcnow
from dockyard.registry.context import RegistryContext
from dockyard.registry.gc import GarbageCollector, GCReport

GC_LEASE = "gc"  # the scheduled collection's lease name (dockyard.app.periodic_jobs)
GC_LEASE_TTL = timedelta(hours=1)
SCHEDULE, MANUAL, CLI = "schedule", "manual", "cli"


@dataclass(frozen=True, slots=True)
class GCRunView:
    id: int
    dry_run: bool
    trigger: str
    actor: str | None
    started_at: datetime
    finished_at: datetime
    manifests: int
    blob_links: int
    blobs: int
    uploads: int
    bytes_freed: int


class CollectionBusy(Exception):
    """Another replica (or job) is collecting now."""


async def record_gc_run(
    db: Database, report: GCReport, *, started_at: datetime, trigger: str, actor: str | None = None
) -> None:
    """Write one finished collection to the history."""
    summary = report.summary()
    async with db.write() as conn:
        await conn.execute(
            insert(GCRun).values(
                dry_run=report.dry_run,
                trigger=trigger,
                actor=actor,
                started_at=started_at,
                finished_at=utcnow(),
                manifests=summary["manifests"],
                blob_links=summary["blob_links"],
                blobs=summary["blobs"],
                uploads=summary["uploads"],
                bytes_freed=summary["bytes_freed"],
            )
        )


async def collect(ctx: RegistryContext, *, dry_run: bool, trigger: str, actor: str | None = None) -> GCReport:
    """Run one collection under the ``gc`` lease and record it. Raises ``CollectionBusy`` while another holds the
    lease (the caller retries later). A real collection counts as the scheduled one (the next waits its interval);
    a dry run leaves the schedule as it was."""
    if not await try_lease(ctx.db, GC_LEASE, GC_LEASE_TTL):
        raise CollectionBusy("another garbage collection is running")
    try:
        started = utcnow()
        report = await GarbageCollector(ctx).run(dry_run=dry_run)
        await record_gc_run(ctx.db, report, started_at=started, trigger=trigger, actor=actor)
        return report
    finally:
        await (release_lease if dry_run else finish_lease)(ctx.db, GC_LEASE)


async def recent_gc_runs(db: Database, limit: int = 10) -> list[GCRunView]:
    """The latest collections, newest first."""
    async with db.read(consistent=True) as conn:
        rows = await conn.execute(select(GCRun).order_by(GCRun.finished_at.desc(), GCRun.id.desc()).limit(limit))
        return [
            GCRunView(
                id=row.id,
                dry_run=bool(row.dry_run),
                trigger=row.trigger,
                actor=row.actor,
                started_at=row.started_at,
                finished_at=row.finished_at,
                manifests=row.manifests,
                blob_links=row.blob_links,
                blobs=row.blobs,
                uploads=row.uploads,
                bytes_freed=row.bytes_freed,
            )
            for row in rows
        ]
