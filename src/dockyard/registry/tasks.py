"""The registry's job: ``gc.run``, one garbage collection asked for from the site-admin page (payload ``dry_run``
and ``actor``), recorded in the history. While another collection holds the ``gc`` lease it waits (``Retry``)."""

from __future__ import annotations

from dockyard.jobs.handlers import Handler, JobContext, Retry
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.registry.context import RegistryContext
from dockyard.registry.gc_runs import MANUAL, CollectionBusy, collect

GC_JOB = "gc.run"
BUSY_RETRY_SECONDS = 30.0


@register(GC_JOB)
def run_gc(env: JobEnvironment) -> Handler:
    ctx = RegistryContext(db=env.db, store=env.store, settings=env.settings)

    async def handle(job: JobContext) -> None:
        actor = job.payload.get("actor")
        try:
            await collect(
                ctx,
                dry_run=bool(job.payload.get("dry_run", True)),
                trigger=MANUAL,
                actor=str(actor) if actor else None,
            )
        except CollectionBusy as busy:
            raise Retry(BUSY_RETRY_SECONDS, str(busy)) from busy

    return handle
