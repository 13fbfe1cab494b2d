"""Work queued on one image's contents runs one job at a time, in the order it was queued: the analysis of a pushed
image in each repository it was pushed to (``analysis.image``: index, inventory and SBOM, scan) and an inventory a
request asked for (``inventory.compute``) share one ordering key (``layers.tasks.image_order``), so each is
claimable only once those queued before it have finished, however they ended — instead of computing the same rows
side by side. Work on another image is not held up."""

from __future__ import annotations

from datetime import timedelta

from dockyard.analysis.tasks import ANALYZE, enqueue_analysis
from dockyard.db.engine import Database
from dockyard.inventory.service import COMPUTE, enqueue_compute
from dockyard.jobs import store
from dockyard.jobs.queue import FAILED, SUCCEEDED
from dockyard.models.base import utcnow

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
KINDS = (ANALYZE, COMPUTE)


async def claim(db: Database, owner: str) -> list[store.ClaimedJob]:
    async with db.write() as conn:
        return await store.claim(conn, kinds=KINDS, limit=10, owner=owner, now=utcnow(), lease=timedelta(minutes=1))


async def finish(db: Database, job: store.ClaimedJob, owner: str, state: str) -> None:
    async with db.write() as conn:
        assert await store.finish(conn, job, owner, state=state, now=utcnow())


async def test_the_work_queued_on_one_image_runs_one_job_after_another(db: Database) -> None:
    async with db.write() as conn:
        await enqueue_analysis(conn, "acme/app", DIGEST)
        await enqueue_compute(conn, "acme/other", DIGEST)  # a request for an inventory
        await enqueue_analysis(conn, "acme/mirror", DIGEST)  # the same image pushed to a second repository
        await enqueue_analysis(conn, "acme/app", DIGEST)  # queued again while queued: the same job
    expected = [(ANALYZE, "acme/app"), (COMPUTE, "acme/other"), (ANALYZE, "acme/mirror")]
    outcomes = [SUCCEEDED, FAILED, SUCCEEDED]  # a job that failed for good frees the next one too
    for (kind, repository), outcome in zip(expected, outcomes, strict=True):
        [job] = await claim(db, "runner-a")
        assert (job.kind, job.payload["repository"], job.attempt) == (kind, repository, 1)
        assert await claim(db, "runner-b") == []  # the next one waits while this one runs
        await finish(db, job, "runner-a", outcome)
    assert await claim(db, "runner-b") == []


async def test_the_analyses_of_two_images_run_side_by_side(db: Database) -> None:
    async with db.write() as conn:
        await enqueue_analysis(conn, "acme/app", DIGEST)
        await enqueue_analysis(conn, "acme/app", OTHER)
    jobs = await claim(db, "runner-a")
    assert sorted(job.payload["digest"] for job in jobs) == [DIGEST, OTHER]
