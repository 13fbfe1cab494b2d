"""Indexing an image's layers: ``index_layers`` indexes those not indexed yet — the first step of a pushed image's
analysis (``dockyard.analysis.tasks``, which also runs the ``layers.index`` jobs queued before the analysis
existed). Idempotent (a ready index is a look-up). A layer that is not a readable tar is recorded as failed by the
indexer and the others go on; a storage error propagates (the job is retried). ``image_order`` is the ordering key
of the work queued on one image's contents."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from dockyard.errors import Invalid, NotFound
from dockyard.layers.index import LayerIndexer

log = logging.getLogger("dockyard.layers")


def image_order(digest: str) -> str:
    """The job ordering key of the work queued on one image's contents — its analysis after a push (one job per
    repository it was pushed to), the inventory a request asks for: a job with this key runs once those queued
    before it have finished, instead of running beside them and computing the same rows twice."""
    return f"image:{digest}"


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
