"""The analysis of a pushed image: ``AnalysisSubscriber`` (a subscriber of the event bus) enqueues one
``analysis.image`` job for every image manifest a push stored anew (``repos.access.new_image_pushed``), in the
transaction that dispatches its ``manifest.pushed`` event. The job, in order:

1. indexes the image's layers (``layer_index_on_push``; ``layers.tasks.index_layers``: a layer that is not a
   readable tar is recorded as failed and the rest go on);
2. computes its inventory (``inventory_on_push``) and, once ready, attaches its SPDX document to the image in the
   pushed repository as an OCI referrer (``sbom_referrers``); an image gone or no longer an image ends the job;
3. scans it for vulnerabilities, or retries (with backoff, ``SCAN_ATTEMPTS`` runs in all) while its inventory is not
   available — which happens only when ``inventory_on_push`` is off and something else computes it.

One job instead of the three that each step was (``layers.index``, ``inventory.compute``, ``vulns.scan``, kept for
jobs queued before and for the inventory a request asks for; this module runs ``layers.index``'s): one claim and
one record per image, the steps in the order they need each other without the job runner ordering three rows, and
no scan retried for an image deleted before its turn. Each step is idempotent (a ready index or a current
inventory is a look-up, an attached SBOM is found again), so a retry repeats only what is left. Deduplicated per
repository and image while queued; the ordering key ``layers.tasks.image_order`` keeps it apart from other work on
the same image (the same image pushed to a second repository, an inventory a request queued). The manifest is read
once, for all the steps (attaching the SBOM takes the inventory just computed); an image deleted before the job's
turn ends it. A storage error retries the job.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.events.bus import OutboxEvent, Unprepared
from dockyard.inventory.referrers import SbomReferrers, server_url
from dockyard.inventory.service import READY
from dockyard.inventory.tasks import inventory_service
from dockyard.jobs.handlers import Handler, JobContext, Retry
from dockyard.jobs.queue import enqueue
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.layers.tasks import image_order, index_layers
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.repos.access import new_image_pushed
from dockyard.vulns.scanner import Scanner
from dockyard.vulns.tasks import SCAN_ATTEMPTS, inventory_source

ANALYZE = "analysis.image"
INDEX = "layers.index"  # the first step's own job before the analysis existed: run for jobs queued then


async def enqueue_analysis(conn: AsyncConnection, repository: str, digest: str) -> None:
    """Analyse image manifest ``repository@digest`` soon: index, inventory and SBOM, scan."""
    await enqueue(
        conn,
        ANALYZE,
        {"repository": repository, "digest": digest},
        dedupe_key=f"{ANALYZE}:{repository}@{digest}",
        ordering_key=image_order(digest),
        max_attempts=SCAN_ATTEMPTS,
    )


class AnalysisSubscriber(Unprepared):
    """The event bus's subscriber for pushed images (``dockyard.events.bus.Subscriber``)."""

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: None) -> None:
        if (pushed := new_image_pushed(event)) is not None:
            await enqueue_analysis(conn, *pushed)


@register(ANALYZE)
def analyze(env: JobEnvironment) -> Handler:
    settings = env.settings
    ctx = RegistryContext(db=env.db, store=env.store, settings=settings)
    inventory = inventory_service(ctx)
    sboms = SbomReferrers(Registry.build(ctx), inventory, server_url(settings))
    scanner = Scanner(env.db, inventory_source(settings, env.db, ctx))

    async def handle(job: JobContext) -> None:
        repository, digest = str(job.payload["repository"]), str(job.payload["digest"])
        target = await inventory.target(repository, digest)  # the manifest, read once for the steps
        if target is None:
            return  # deleted since: nothing to analyse
        if settings.layer_index_on_push:
            await index_layers(inventory.indexer, dict.fromkeys(target.layers), f"{repository}@{digest}")
        if settings.inventory_on_push:
            state = await inventory.compute_target(target)
            if state is None:
                return  # gone meanwhile: nothing to scan
            if state.state == READY and settings.sbom_referrers:
                await sboms.attach(repository, digest, state)
        if await scanner.scan(digest) is None:
            raise Retry(None, "the image's inventory is not available yet")

    return handle


@register(INDEX)
def index(env: JobEnvironment) -> Handler:
    """A ``layers.index`` job queued before an upgrade: the image's layers, indexed (the analysis' first step)."""
    inventory = inventory_service(RegistryContext(db=env.db, store=env.store, settings=env.settings))

    async def handle(job: JobContext) -> None:
        repository, digest = str(job.payload["repository"]), str(job.payload["digest"])
        target = await inventory.target(repository, digest)
        if target is not None:  # else deleted since, or not an image
            await index_layers(inventory.indexer, dict.fromkeys(target.layers), f"{repository}@{digest}")

    return handle
