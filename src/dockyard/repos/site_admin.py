"""What the site-admin pages show and do besides accounts: storage used (all blobs, the namespaces using the most),
the job queue (depth by kind and state, the oldest queued job, recent failures; a dead job retried) and garbage
collection (its history; a collection, dry or real, started as the ``gc.run`` job).

Site administrators only: everyone else gets ``Denied`` (the web pages answer 404 before asking). Retrying a job
and starting a collection are written to the audit log (namespace ``""``: they belong to no namespace) in the
transaction that queues the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, NotFound
from dockyard.events.audit import record_audit
from dockyard.jobs.queue import UNFINISHED, enqueue
from dockyard.jobs.stats import FailedJob, KindCount, counts_by_kind, queue_stats, recent_failures, requeue_dead
from dockyard.models import Blob, Job, NamespaceUsage
from dockyard.models.base import utcnow
from dockyard.registry.gc_runs import GCRunView, recent_gc_runs
from dockyard.registry.tasks import GC_JOB

SITE = ""  # the audit namespace of site-wide actions
TOP_NAMESPACES = 20
FINISHED_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class NamespaceStorage:
    namespace: str
    storage_bytes: int
    storage_limit: int | None


@dataclass(frozen=True, slots=True)
class StorageSummary:
    total_bytes: int  # every committed blob, stored once whatever links it
    blob_count: int
    namespaces: list[NamespaceStorage]  # the ones using the most, largest first (distinct blobs each links)


@dataclass(frozen=True, slots=True)
class JobsOverview:
    counts: list[KindCount]  # unfinished by kind and state; finished in the last 24 hours by kind and outcome
    oldest_queued_seconds: float
    failures: list[FailedJob]


@dataclass(frozen=True, slots=True)
class GCState:
    runs: list[GCRunView]  # newest first
    pending: int  # gc.run jobs queued or running


def _require_site_admin(actor: Principal, doing: str) -> None:
    if not actor.superuser:
        raise Denied("account", f"only site administrators may {doing}")


class SiteAdminService:
    """Storage, jobs and garbage collection for site administrators. ``wake`` has this process's job runner look
    for due jobs after a commit that queued one."""

    def __init__(self, db: Database, wake: Callable[[], None] = lambda: None) -> None:
        self._db = db
        self._wake = wake

    async def storage(self, actor: Principal) -> StorageSummary:
        _require_site_admin(actor, "see the storage used")
        async with self._db.read(consistent=True) as conn:
            total, count = (await conn.execute(select(func.coalesce(func.sum(Blob.size), 0), func.count()))).one()
            rows = await conn.execute(
                select(NamespaceUsage.namespace, NamespaceUsage.storage_bytes, NamespaceUsage.storage_limit)
                .where(NamespaceUsage.storage_bytes > 0)
                .order_by(NamespaceUsage.storage_bytes.desc(), NamespaceUsage.namespace)
                .limit(TOP_NAMESPACES)
            )
            top = [NamespaceStorage(str(ns), int(used), limit) for ns, used, limit in rows]
        return StorageSummary(int(total), int(count), top)

    async def jobs(self, actor: Principal) -> JobsOverview:
        _require_site_admin(actor, "see the job queue")
        counts = await counts_by_kind(self._db, utcnow() - FINISHED_WINDOW)
        stats = await queue_stats(self._db)
        return JobsOverview(counts, stats.oldest_due_seconds, await recent_failures(self._db))

    async def retry_job(self, actor: Principal, job_id: int, *, source_ip: str = "") -> str:
        """Queue a dead job again for one more attempt; its kind. NotFound: no dead job of that id; Conflict: an
        unfinished job holds its dedupe key."""
        _require_site_admin(actor, "retry jobs")
        try:
            async with self._db.write() as conn:
                kind = await requeue_dead(conn, job_id)
                if kind is None:
                    raise NotFound("operation", "no dead job with this id", {"id": job_id})
                await record_audit(
                    conn,
                    SITE,
                    "job.retry",
                    actor=actor.audit_name,
                    target=str(job_id),
                    source_ip=source_ip,
                    data={"kind": kind},
                )
        except IntegrityError as exc:
            raise Conflict("operation", "a job doing the same work is already queued") from exc
        self._wake()
        return kind

    async def gc(self, actor: Principal) -> GCState:
        _require_site_admin(actor, "see garbage collection")
        runs = await recent_gc_runs(self._db)
        async with self._db.read(consistent=True) as conn:
            pending = await conn.scalar(
                select(func.count()).select_from(Job).where(Job.kind == GC_JOB, Job.state.in_(UNFINISHED))
            )
        return GCState(runs, int(pending or 0))

    async def start_gc(self, actor: Principal, *, dry_run: bool, source_ip: str = "") -> int | None:
        """Queue one garbage collection (``gc.run``); its job id, or None when one is already queued."""
        _require_site_admin(actor, "start garbage collection")
        async with self._db.write() as conn:
            job_id = await enqueue(
                conn,
                GC_JOB,
                {"dry_run": dry_run, "actor": actor.audit_name},
                dedupe_key=GC_JOB,
                max_attempts=120,  # a collection waits for a running one 30 s at a time (registry.tasks)
            )
            if job_id is not None:
                await record_audit(
                    conn,
                    SITE,
                    "gc.start",
                    actor=actor.audit_name,
                    target=str(job_id),
                    source_ip=source_ip,
                    data={"dry_run": dry_run},
                )
        if job_id is not None:
            self._wake()
        return job_id
