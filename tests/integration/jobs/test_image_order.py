"""The jobs a push queues on one image's contents run one after another: the layer index (``layers.index``), then
the inventory computed from it (``inventory.compute``), then the vulnerability scan of that inventory
(``vulns.scan``) share one ordering key (``layers.tasks.image_order``), so each is claimable only once those queued
before it have finished, however they ended — instead of running beside them, polling for the index (a write
transaction every 0.2 s) or finding no inventory and waiting out a retry."""

from __future__ import annotations

from datetime import timedelta

from dockyard.db.engine import Database
from dockyard.inventory.service import COMPUTE, enqueue_compute
from dockyard.jobs import store
from dockyard.jobs.queue import FAILED, SUCCEEDED
from dockyard.layers.tasks import INDEX, enqueue_index
from dockyard.models.base import utcnow
from dockyard.vulns.tasks import SCAN, enqueue_scan

DIGEST = "sha256:" + "ab" * 32
KINDS = (INDEX, COMPUTE, SCAN)


async def claim(db: Database, owner: str) -> list[store.ClaimedJob]:
    async with db.write() as conn:
        return await store.claim(conn, kinds=KINDS, limit=10, owner=owner, now=utcnow(), lease=timedelta(minutes=1))


async def finish(db: Database, job: store.ClaimedJob, owner: str, state: str) -> None:
    async with db.write() as conn:
        assert await store.finish(conn, job, owner, state=state, now=utcnow())


async def test_the_index_inventory_and_scan_of_a_pushed_image_run_one_after_another(db: Database) -> None:
    async with db.write() as conn:  # what a push's subscribers queue, in their order
        await enqueue_index(conn, "acme/app", DIGEST)
        await enqueue_compute(conn, "acme/app", DIGEST)
        await enqueue_compute(conn, "acme/mirror", DIGEST)  # the same image pushed to a second repository
        await enqueue_scan(conn, DIGEST)
    expected = [(INDEX, "acme/app"), (COMPUTE, "acme/app"), (COMPUTE, "acme/mirror")]
    outcomes = [SUCCEEDED, FAILED, SUCCEEDED]  # a job that failed for good frees the next one too
    for (kind, repository), outcome in zip(expected, outcomes, strict=True):
        [job] = await claim(db, "runner-a")
        assert (job.kind, job.payload["repository"]) == (kind, repository)
        assert await claim(db, "runner-b") == []  # the next one waits while this one runs
        await finish(db, job, "runner-a", outcome)
    [scan] = await claim(db, "runner-b")
    assert (scan.kind, scan.payload, scan.attempt) == (SCAN, {"digest": DIGEST}, 1)


async def test_a_scan_of_an_image_with_no_inventory_queued_runs_at_once(db: Database) -> None:
    async with db.write() as conn:
        await enqueue_scan(conn, DIGEST)
    assert [job.kind for job in await claim(db, "runner-a")] == [SCAN]
