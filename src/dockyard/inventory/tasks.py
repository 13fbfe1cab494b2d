"""Inventory on push: ``InventorySubscriber`` (a subscriber of the event bus) enqueues ``inventory.compute`` for
every pushed image manifest, in the transaction that dispatches its ``manifest.pushed`` event, next to the
``layers.index`` job of the same image; the job computes the image's inventory (waiting for, or building, the
layer indexes it needs). Deduplicated per image digest while queued; idempotent (a current inventory is a
look-up). A storage error retries the job; every other failure is recorded on the image's inventory."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.events.bus import OutboxEvent
from dockyard.inventory.service import COMPUTE, InventoryService, enqueue_compute
from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.layers.index import LayerIndexer
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.repos.access import new_image_pushed
from dockyard.settings import Settings


class InventorySubscriber:
    """The event bus's inventory subscriber (``dockyard.events.bus.Subscriber``)."""

    async def prepare(self, event: OutboxEvent) -> None:
        return None

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: None) -> None:
        if (pushed := new_image_pushed(event)) is not None:
            repository, digest = pushed
            await enqueue_compute(conn, repository, digest)


def inventory_service(ctx: RegistryContext, indexer: LayerIndexer | None = None) -> InventoryService:
    """The process's ``InventoryService`` (sharing ``indexer`` with the file browser when given)."""
    blobs = BlobService(ctx)
    return InventoryService(
        ctx.db, blobs, indexer or LayerIndexer(ctx.db, blobs), tmp_dir=inventory_tmp_dir(ctx.settings)
    )


def inventory_tmp_dir(settings: Settings) -> Path:
    """Where Java archives and RPM databases are spooled while read: under the data directory."""
    return (settings.data_dir / "tmp" / "inventory").resolve()


@register(COMPUTE)
def compute(env: JobEnvironment) -> Handler:
    service = inventory_service(RegistryContext(db=env.db, store=env.store, settings=env.settings))

    async def handle(job: JobContext) -> None:
        await service.compute(str(job.payload["repository"]), str(job.payload["digest"]))

    return handle
