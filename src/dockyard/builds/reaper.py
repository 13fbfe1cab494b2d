"""Ending builds whose jobs ended without them (the ``builds.reap`` periodic job).

Every unfinished build has an unfinished job that will move it on: ``builds.run`` while it is queued, cloning,
building or pushing, ``builds.attest`` while it is signing (each is queued in the transaction that creates the build
or enters the state). A job can end without ending its build: its last attempt's runner died (the job queue marks
it ``dead`` when it next claims), or its last attempt raised. Such a build would show ``building`` or ``signing``
forever; the reaper finds it and fails it, naming the job that gave up (not its error text, which is the server's
and goes to the server's log, not to the build's readers).

Race-free without a lock: the builds are read first, the jobs after. A build that moves on between the two reads
either still has an unfinished job (the next state's job is queued in the transaction that enters the state, before
the current job finishes) or has finished; and the state change is conditional on the state that was read
(``records.change_state(expect=…)``), so a build that finished meanwhile is left alone.
"""

from __future__ import annotations

import logging
from typing import Final

from sqlalchemy import select

from dockyard.builds import records
from dockyard.db.engine import Database
from dockyard.jobs.queue import DEAD, FAILED, UNFINISHED, decode_payload
from dockyard.models import Build, Job

log = logging.getLogger("dockyard.builds")

BUILD_JOB_KINDS: Final = (records.RUN, records.ATTEST)
RECENT_ENDED_JOBS: Final = 500  # how many ended jobs are searched for the one that left a reaped build


def _build_of(payload: str) -> int | None:
    try:
        value = decode_payload(payload).get("build")
    except ValueError:
        return None
    return value if isinstance(value, int) else None


async def reap_orphaned_builds(db: Database) -> int:
    """Fail every unfinished build that no unfinished job will move on; how many were failed."""
    unfinished_states = (records.QUEUED, *records.RUNNING_STATES)
    async with db.read() as conn:
        builds = (await conn.execute(select(Build.id, Build.state).where(Build.state.in_(unfinished_states)))).all()
    if not builds:
        return 0
    async with db.read() as conn:
        pending = (
            await conn.execute(select(Job.payload).where(Job.kind.in_(BUILD_JOB_KINDS), Job.state.in_(UNFINISHED)))
        ).scalars()
        carried = {build for build in map(_build_of, pending) if build is not None}
        orphans = [(int(row.id), str(row.state)) for row in builds if int(row.id) not in carried]
        if not orphans:
            return 0
        ended = (
            await conn.execute(
                select(Job.id, Job.payload, Job.kind, Job.last_error)
                .where(Job.kind.in_(BUILD_JOB_KINDS), Job.state.in_((DEAD, FAILED)))
                .order_by(Job.id.desc())
                .limit(RECENT_ENDED_JOBS)
            )
        ).all()
    orphan_ids = {build_id for build_id, _ in orphans}
    gave_up: dict[int, tuple[int, str, str | None]] = {}  # build → the newest ended job of it: id, kind, error
    for row in ended:
        build = _build_of(row.payload)
        if build in orphan_ids and build not in gave_up:
            gave_up[build] = (int(row.id), str(row.kind), row.last_error)
    reaped = 0
    for build_id, state in orphans:
        job = gave_up.get(build_id)
        if job is None:
            reason = f"no job is left to finish it while it was {state} (its runner stopped)"
        else:
            reason = f"its {job[1]} job gave up after its last attempt while it was {state}"
        async with db.write() as conn:
            changed = await records.change_state(conn, build_id, records.FAILED, expect=(state,), error=reason[:1000])
        if changed is not None:
            reaped += 1
            if job is None:
                log.warning("build %d failed: %s", build_id, reason)
            else:
                log.warning("build %d failed: %s (job %d: %s)", build_id, reason, job[0], job[2])
    return reaped
