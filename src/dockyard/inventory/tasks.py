"""The ``inventory.compute`` job — queued when a request asks for an inventory never computed (or by older
detectors), and on push before a pushed image's analysis (``dockyard.analysis.tasks``) did it: computes the image's
inventory (building the layer indexes it needs), then (``sbom_referrers``, on by default) attaches its SPDX document
to the image in the repository as an OCI referrer (``dockyard.inventory.referrers``). Deduplicated per image digest
and repository while queued; idempotent (a current inventory is a look-up, an attached SBOM is found again). A
storage error retries the job; every other failure is recorded on the image's inventory. Also the process's
``inventory_service``."""

from __future__ import annotations

from pathlib import Path

from dockyard.inventory.referrers import SbomReferrers, server_url
from dockyard.inventory.service import COMPUTE, READY, InventoryService
from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.layers.index import LayerIndexer
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.settings import Settings


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
    ctx = RegistryContext(db=env.db, store=env.store, settings=env.settings)
    service = inventory_service(ctx)
    sboms = SbomReferrers(Registry.build(ctx), service, server_url(env.settings))

    async def handle(job: JobContext) -> None:
        repository, digest = str(job.payload["repository"]), str(job.payload["digest"])
        state = await service.compute(repository, digest)
        if state is not None and state.state == READY and env.settings.sbom_referrers:
            await sboms.attach(repository, digest, state)

    return handle
