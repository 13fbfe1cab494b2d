"""Indexing an image's layers: ``index_layers`` indexes those not indexed yet — the first step of a pushed image's
analysis (``dockyard.analysis.tasks``) —, ``index_image`` looks them up in the manifest first, for the
``layers.index`` job that did it on push before the analysis existed (run for jobs queued then). Idempotent (a
ready index is a look-up). A layer that is not a readable tar is recorded as failed by the indexer and the others
go on; a storage error retries the job. ``image_order`` is the ordering key of the work queued on one image's
contents."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import select

from dockyard.core.manifest import parse_manifest
from dockyard.errors import DomainError, Invalid, NotFound
from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.layers.index import LayerIndexer
from dockyard.models import Manifest, Repository
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext

log = logging.getLogger("dockyard.layers")

INDEX = "layers.index"


def image_order(digest: str) -> str:
    """The job ordering key of the work queued on one image's contents — its analysis after a push (one job per
    repository it was pushed to), the inventory a request asks for: a job with this key runs once those queued
    before it have finished, instead of running beside them and computing the same rows twice."""
    return f"image:{digest}"


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
    layers = [str(layer.digest) for layer in parsed.layers if not layer.is_foreign]
    return await index_layers(indexer, layers, f"{repository}@{digest}")


async def index_layers(indexer: LayerIndexer, layers: Iterable[str], image: str) -> int:
    """Index the layers ``layers`` of ``image`` (``repository@digest``, for the log); returns how many are indexed
    (failed ones not counted)."""
    done = 0
    for layer in layers:
        try:
            await indexer.ensure(layer)
            done += 1
        except Invalid as exc:
            log.info("layer %s of %s: %s", layer, image, exc.message)
        except NotFound:
            log.info("layer %s of %s is gone", layer, image)
    return done


@register(INDEX)
def index(env: JobEnvironment) -> Handler:
    indexer = LayerIndexer(env.db, BlobService(RegistryContext(db=env.db, store=env.store, settings=env.settings)))

    async def handle(job: JobContext) -> None:
        await index_image(indexer, str(job.payload["repository"]), str(job.payload["digest"]))

    return handle
