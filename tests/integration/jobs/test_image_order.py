"""The jobs that read an image's inventory wait for its computation: a push queues ``inventory.compute`` and then
``vulns.scan`` under one ordering key (``inventory.service.image_order``), so the scan is not claimable — and
cannot run, find no inventory and wait out a retry — until the computation has finished, however it ended."""

from __future__ import annotations

from datetime import timedelta

from dockyard.db.engine import Database
from dockyard.inventory.service import COMPUTE, enqueue_compute
from dockyard.jobs import store
from dockyard.jobs.queue import FAILED, SUCCEEDED
from dockyard.models.base import utcnow
from dockyard.vulns.tasks import SCAN, enqueue_scan

DIGEST = "sha256:" + "ab" * 32
KINDS = (COMPUTE, SCAN)


async def claim(db: Database, owner: str) -> list[store.ClaimedJob]:
    async with db.write() as conn:
        return await store.claim(conn, kinds=KINDS, limit=10, owner=owner, now=utcnow(), lease=timedelta(minutes=1))


async def finish(db: Database, job: store.ClaimedJob, owner: str, state: str) -> None:
    async with db.write() as conn:
        assert await store.finish(conn, job, owner, state=state, now=utcnow())


async def test_a_scan_waits_for_the_inventory_queued_before_it(db: Database) -> None:
    async with db.write() as conn:
        await enqueue_compute(conn, "acme/app", DIGEST)
        await enqueue_compute(conn, "acme/mirror", DIGEST)  # the same image pushed to a second repository
        await enqueue_scan(conn, DIGEST)
    for computed, outcome in enumerate((SUCCEEDED, FAILED)):  # a computation that failed for good frees it too
        first = await claim(db, "runner-a")
        assert [(job.kind, job.payload["repository"]) for job in first] == [
            (COMPUTE, ("acme/app", "acme/mirror")[computed])
        ]
        assert await claim(db, "runner-b") == []  # the scan waits while the computation runs
        await finish(db, first[0], "runner-a", outcome)
    [scan] = await claim(db, "runner-b")
    assert (scan.kind, scan.payload, scan.attempt) == (SCAN, {"digest": DIGEST}, 1)


async def test_a_scan_of_an_image_with_no_inventory_queued_runs_at_once(db: Database) -> None:
    async with db.write() as conn:
        await enqueue_scan(conn, DIGEST)
    assert [job.kind for job in await claim(db, "runner-a")] == [SCAN]
