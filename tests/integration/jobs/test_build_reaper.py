"""The builds reaper (``dockyard.builds.reaper``) on a real, migrated database of the test backend: a build whose
last job ended without ending it — its runner died in the last attempt, or the last attempt raised — is failed,
naming the job and the state it was left in (not the job's error text, which stays in the server's log); a build
that an unfinished job still carries, and a finished build, are left alone."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select, update

from dockyard.builds import records
from dockyard.builds.reaper import reap_orphaned_builds
from dockyard.db.engine import Database
from dockyard.events import outbox
from dockyard.jobs.queue import DEAD, SUCCEEDED, enqueue
from dockyard.models import Build, Job
from dockyard.models.base import utcnow
from dockyard.models.events import Event


async def add_build(db: Database, state: str) -> int:
    values: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "repository": "alice/app",
        "namespace": "alice",
        "rule_id": None,
        "coalesce_key": f"reaper:{uuid.uuid4()}",
        "source_type": "Branch",
        "ref": "main",
        "commit": None,
        "tags": '["latest"]',
        "dockerfile": "Dockerfile",
        "context": "/",
        "trigger": "api",
        "actor": "alice",
        "state": state,
        "cancel_requested": False,
        "log_size": 0,
        "created_at": utcnow(),
    }
    async with db.write() as conn:
        return int((await conn.execute(insert(Build).values(**values).returning(Build.id))).scalar_one())


async def add_job(db: Database, kind: str, build_id: int, state: str | None = None, error: str | None = None) -> int:
    async with db.write() as conn:
        job_id = await enqueue(conn, kind, {"build": build_id})
        assert job_id is not None
        if state is not None:
            await conn.execute(update(Job).where(Job.id == job_id).values(state=state, last_error=error))
    return job_id


async def build_row(db: Database, build_id: int) -> Any:
    async with db.read() as conn:
        return (await conn.execute(select(Build.state, Build.error).where(Build.id == build_id))).one()


async def test_builds_left_by_their_jobs_fail_and_carried_ones_stay(db: Database) -> None:
    # Left behind: the run job of a building build died (its runner vanished in the last attempt); the attest job
    # of a signing build ran out of attempts; a pushing build has no job at all.
    building = await add_build(db, records.BUILDING)
    await add_job(db, records.RUN, building, DEAD, "RuntimeError: /srv/secret/path exploded")
    signing = await add_build(db, records.SIGNING)
    await add_job(db, records.RUN, signing, SUCCEEDED)
    await add_job(db, records.ATTEST, signing, DEAD, "OSError: storage down")
    pushing = await add_build(db, records.PUSHING)
    # Carried: a queued build with its queued job; a signing build whose attest job is queued (its run job ended);
    # a building build with an ended earlier job and a queued newer one (postponed); a finished build.
    queued = await add_build(db, records.QUEUED)
    await add_job(db, records.RUN, queued)
    carried_signing = await add_build(db, records.SIGNING)
    await add_job(db, records.RUN, carried_signing, SUCCEEDED)
    await add_job(db, records.ATTEST, carried_signing)
    postponed = await add_build(db, records.BUILDING)
    await add_job(db, records.RUN, postponed, DEAD, "lost")
    await add_job(db, records.RUN, postponed)
    finished = await add_build(db, records.SUCCEEDED)

    assert await reap_orphaned_builds(db) == 3

    state, error = await build_row(db, building)
    assert state == records.FAILED
    assert error == "its builds.run job gave up after its last attempt while it was building"
    assert await build_row(db, signing) == (
        records.FAILED,
        "its builds.attest job gave up after its last attempt while it was signing",
    )
    assert await build_row(db, pushing) == (
        records.FAILED,
        "no job is left to finish it while it was pushing (its runner stopped)",
    )
    for build_id, expected in (
        (queued, records.QUEUED),
        (carried_signing, records.SIGNING),
        (postponed, records.BUILDING),
        (finished, records.SUCCEEDED),
    ):
        assert (await build_row(db, build_id)).state == expected

    # Each failure is a state change like any other: its build.failed event, and the log's archive job.
    async with db.read() as conn:
        events = (await conn.execute(select(Event.type).where(Event.type == outbox.BUILD_FAILED))).scalars().all()
        archives = (await conn.execute(select(Job.payload).where(Job.kind == records.ARCHIVE_LOG))).scalars().all()
    assert len(events) == 3
    assert len(archives) == 3

    assert await reap_orphaned_builds(db) == 0  # nothing left to reap; the failed builds stay failed
