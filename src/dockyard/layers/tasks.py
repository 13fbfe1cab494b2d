"""Indexing on push: ``LayerIndexSubscriber`` (a subscriber of the event bus) enqueues ``layers.index`` for every
pushed image manifest, in the transaction that dispatches its ``manifest.pushed`` event; the job indexes the
image's layers that are not indexed yet. Deduplicated per image while queued; idempotent (a ready index is a
look-up). A layer that is not a readable tar is recorded as failed by the indexer and ends the job normally; a
storage error retries it."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.manifest import parse_manifest
from dockyard.errors import DomainError, Invalid, NotFound
from dockyard.events.bus import OutboxEvent, Unprepared
from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.queue import enqueue
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.layers.index import LayerIndexer
from dockyard.models import Manifest, Repository
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.repos.access import new_image_pushed

log = logging.getLogger("dockyard.layers")

INDEX = "layers.index"


def image_order(digest: str) -> str:
    """The job ordering key of the work a push queues on one image's contents — the index of its layers, then the
    inventory computed from that index, then the vulnerability scan of that inventory (the subscribers queue them
    in that order): a job with this key runs once those queued before it have finished, instead of running beside
    them and polling for what they make."""
    return f"image:{digest}"


async def enqueue_index(conn: AsyncConnection, repository: str, digest: str) -> None:
    """Index the layers of image manifest ``repository@digest`` soon."""
    await enqueue(
        conn,
        INDEX,
        {"repository": repository, "digest": digest},
        dedupe_key=f"{INDEX}:{repository}@{digest}",
        ordering_key=image_order(digest),
    )


class LayerIndexSubscriber(Unprepared):
    """The event bus's layer-index subscriber (``dockyard.events.bus.Subscriber``)."""

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: None) -> None:
        if (pushed := new_image_pushed(event)) is not None:
            repository, digest = pushed
            await enqueue_index(conn, repository, digest)


async def index_image(indexer: LayerIndexer, repository: str, digest: str) -> int:
    """Index the layers of ``repository@digest``; returns how many layers are indexed (failed ones not counted)."""
    async with indexer.db.read() as conn:
        row = (
            await conn.execute(
                select(Manifest.media_type, Manifest.content)
                .join(Repository, Repository.id == Manifest.repository_id)
                .where(Repository.name == repository, Manifest.digest == digest)
            )
        ).first()
    if row is None:
        return 0  # deleted since
    try:
        parsed = parse_manifest(row.content, row.media_type)
    except DomainError:
        return 0
    done = 0
    for layer in parsed.layers:
        if layer.is_foreign:
            continue
        try:
            await indexer.ensure(str(layer.digest))
            done += 1
        except Invalid as exc:
            log.info("layer %s of %s@%s: %s", layer.digest, repository, digest, exc.message)
        except NotFound:
            log.info("layer %s of %s@%s is gone", layer.digest, repository, digest)
    return done


@register(INDEX)
def index(env: JobEnvironment) -> Handler:
    indexer = LayerIndexer(env.db, BlobService(RegistryContext(db=env.db, store=env.store, settings=env.settings)))

    async def handle(job: JobContext) -> None:
        await index_image(indexer, str(job.payload["repository"]), str(job.payload["digest"]))

    return handle
