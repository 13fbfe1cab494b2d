"""The job table's statements for runners: find due jobs, claim them under a lease, renew, finish, release, purge.

Claiming is safe with any number of runners in any number of processes:

- PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` then ``UPDATE`` in one transaction; two runners never lock the
  same row, and a runner skips rows another is claiming instead of waiting for it.
- SQLite: the same SELECT and UPDATE inside ``Database.write()``, whose ``BEGIN IMMEDIATE`` (and writer gate)
  lets one writer in at a time, so no other claim can interleave.

A job is claimable when it is ``queued`` and due (``run_at <= now``), or ``running`` under a lease that has run
out (its runner died or stalled), and no earlier (lower id) unfinished job shares its ``ordering_key``. Every
write that ends an attempt is fenced on (``lease_owner``, ``attempts``): a runner that lost its lease cannot
overwrite what the new holder does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, and_, bindparam, delete, exists, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from dockyard.core.holders import is_dead
from dockyard.jobs.queue import DEAD, FINISHED, QUEUED, RUNNING, UNFINISHED, decode_payload
from dockyard.models import Job

MAX_ERROR_CHARS = 4000
# Inline literals, not bound parameters: the planners use the partial index on (ordering_key, id) only when the
# query's predicate visibly implies the index's ``state IN ('queued', 'running')``.
_UNFINISHED_LITERALS: list[ColumnElement[str]] = [literal_column(f"'{state}'") for state in UNFINISHED]


@dataclass(frozen=True)
class ClaimedJob:
    """A job this runner now holds: run attempt ``attempt`` of it before ``lease_until`` (renewable)."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    expires_at: datetime | None


_Candidate = Row[int, str, str, int, int, datetime | None]  # id, kind, payload, attempts, max_attempts, expires_at


# The claim's statements, built once with bound parameters (``now``, ``kinds``, ``limit``): a runner claims after
# every job it finishes, and a statement built anew costs its construction and cache-key walk each time — with
# the aliased ordering check, more than the query itself.
_DUE_QUEUED = and_(Job.state == QUEUED, Job.run_at <= bindparam("now"))
_LEASE_EXPIRED = and_(Job.state == RUNNING, Job.lease_until < bindparam("now"))
_EARLIER = aliased(Job)
_IN_ORDER = or_(
    Job.ordering_key.is_(None),
    ~exists().where(
        _EARLIER.ordering_key == Job.ordering_key,
        _EARLIER.id < Job.id,
        _EARLIER.state.in_(_UNFINISHED_LITERALS),
    ),
)
_OF_KINDS = Job.kind.in_(bindparam("kinds", expanding=True))
_ANY_DUE = select(Job.id).where(or_(_DUE_QUEUED, _LEASE_EXPIRED), _OF_KINDS, _IN_ORDER).limit(1)


def _candidates_of(due: ColumnElement[bool], *, locking: bool) -> Select[int, str, str, int, int, datetime | None]:
    # One state per query, ordered as the (state, run_at, id) index is: the scan walks the index in order and
    # stops at ``limit``, however long the backlog.
    statement = (
        select(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.expires_at)
        .where(due, _OF_KINDS, _IN_ORDER)
        .order_by(Job.run_at, Job.id)
        .limit(bindparam("limit"))
    )
    return statement.with_for_update(skip_locked=True, of=Job) if locking else statement


# (lease ran out, queued and due) × (SQLite, PostgreSQL: FOR UPDATE SKIP LOCKED)
_CANDIDATES = {
    (due_name, locking): _candidates_of(due, locking=locking)
    for due_name, due in (("expired", _LEASE_EXPIRED), ("queued", _DUE_QUEUED))
    for locking in (False, True)
}
_TAKE = (
    update(Job)
    .where(Job.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=RUNNING,
        lease_owner=bindparam("owner"),
        lease_until=bindparam("until"),
        attempts=Job.attempts + 1,
        started_at=bindparam("started"),
    )
)


async def any_due(conn: AsyncConnection, kinds: Collection[str], now: datetime) -> bool:
    """Whether a claim would find something: a cheap read that spares idle runners a write transaction."""
    if not kinds:
        return False
    row = await conn.execute(_ANY_DUE, {"now": now, "kinds": list(kinds)})
    return row.first() is not None


async def _candidates(
    conn: AsyncConnection, due: str, kinds: Collection[str], now: datetime, limit: int
) -> list[_Candidate]:
    statement = _CANDIDATES[due, conn.dialect.name == "postgresql"]
    return list((await conn.execute(statement, {"now": now, "kinds": list(kinds), "limit": limit})).all())


async def expire_dead_owners(conn: AsyncConnection, now: datetime) -> int:
    """End the leases of running jobs whose runner is known dead (``core.holders.is_dead``: a process of this
    machine that has exited), so that they are claimed at once rather than when the lease runs out. Run it in a
    write transaction; returns the number of jobs freed."""
    owners = (
        await conn.execute(select(Job.lease_owner).where(Job.state == RUNNING, Job.lease_until >= now).distinct())
    ).scalars()
    dead = [owner for owner in owners if is_dead(owner)]
    if not dead:
        return 0
    result = await conn.execute(
        update(Job)
        .where(Job.state == RUNNING, Job.lease_owner.in_(dead))
        .values(lease_until=now - timedelta(microseconds=1))
    )
    return int(result.rowcount or 0)


async def claim(
    conn: AsyncConnection, *, kinds: Collection[str], limit: int, owner: str, now: datetime, lease: timedelta
) -> list[ClaimedJob]:
    """Claim up to ``limit`` claimable jobs of ``kinds`` for ``owner``: jobs whose runner's lease ran out first,
    then queued jobs, oldest due first. Run it in a write transaction. Jobs found past their horizon, or whose
    runner died during their last attempt, become ``dead`` here instead of being returned."""
    if not kinds or limit < 1:
        return []
    rows = await _candidates(conn, "expired", kinds, now, limit)
    if len(rows) < limit:
        rows += await _candidates(conn, "queued", kinds, now, limit - len(rows))
    claimed: list[ClaimedJob] = []
    for row in rows:
        reason = None
        if row.expires_at is not None and row.expires_at <= now:
            reason = "expired: not run before its horizon"
        elif row.attempts >= row.max_attempts:
            # Only a job whose runner vanished mid-attempt gets here (finish() never requeues the last attempt).
            reason = f"the runner of attempt {row.attempts} (the last) stopped responding"
        if reason is not None:
            await conn.execute(
                update(Job)
                .where(Job.id == row.id)
                .values(state=DEAD, lease_owner=None, lease_until=None, finished_at=now, last_error=reason)
            )
            continue
        claimed.append(
            ClaimedJob(
                id=row.id,
                kind=row.kind,
                payload=decode_payload(row.payload),
                attempt=row.attempts + 1,
                max_attempts=row.max_attempts,
                expires_at=row.expires_at,
            )
        )
    if claimed:
        await conn.execute(
            _TAKE, {"ids": [job.id for job in claimed], "owner": owner, "until": now + lease, "started": now}
        )
    return claimed


async def renew(conn: AsyncConnection, ids: Iterable[int], owner: str, until: datetime) -> set[int]:
    """Extend ``owner``'s leases on ``ids`` to ``until``; the ids it still held (the others were lost)."""
    wanted = list(ids)
    if not wanted:
        return set()
    result = await conn.execute(
        update(Job)
        .where(Job.id.in_(wanted), Job.lease_owner == owner, Job.state == RUNNING)
        .values(lease_until=until)
        .returning(Job.id)
    )
    return {int(job_id) for job_id in result.scalars()}


async def finish(
    conn: AsyncConnection,
    job: ClaimedJob,
    owner: str,
    *,
    state: str,
    now: datetime,
    run_at: datetime | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome of ``owner``'s attempt: a final state, or ``queued`` again at ``run_at``. False when the
    lease was lost meanwhile (nothing is written: the job belongs to another runner)."""
    values: dict[str, Any] = {"state": state, "lease_owner": None, "lease_until": None}
    if state == QUEUED:
        assert run_at is not None
        values["run_at"] = run_at
    else:
        assert state in FINISHED
        values["finished_at"] = now
    if error is not None:
        values["last_error"] = error[:MAX_ERROR_CHARS]
    result = await conn.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_owner == owner, Job.attempts == job.attempt, Job.state == RUNNING)
        .values(**values)
    )
    return bool(result.rowcount == 1)


async def release(conn: AsyncConnection, ids: Iterable[int], owner: str, now: datetime) -> int:
    """Hand ``owner``'s unfinished jobs back: queued and due now, the interrupted attempt not counted."""
    wanted = list(ids)
    if not wanted:
        return 0
    result = await conn.execute(
        update(Job)
        .where(Job.id.in_(wanted), Job.lease_owner == owner, Job.state == RUNNING)
        .values(state=QUEUED, lease_owner=None, lease_until=None, run_at=now, attempts=Job.attempts - 1)
    )
    return int(result.rowcount)


async def purge(conn: AsyncConnection, *, finished_before: datetime, limit: int) -> int:
    """Delete up to ``limit`` jobs that finished before ``finished_before``; how many went."""
    oldest = (
        select(Job.id)
        .where(Job.finished_at < finished_before, Job.state.in_(FINISHED))
        .order_by(Job.finished_at)
        .limit(limit)
    )
    ids = [int(job_id) for job_id in (await conn.execute(oldest)).scalars()]
    if not ids:
        return 0
    result = await conn.execute(delete(Job).where(Job.id.in_(ids)))
    return int(result.rowcount)
