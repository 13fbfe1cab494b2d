"""The build record: queueing a build with coalescing, its state changes (each a ``build.*`` outbox event written in
the same transaction), and the view of a build that the API, the events and the CLI show.

Coalescing: at most one *queued* build per (rule, ref) — a partial unique index on ``builds.coalesce_key`` among
queued rows. A trigger for a (rule, ref) that already has a queued build moves that build to the newest commit
instead of queueing another; the running one (if any) is left alone, and the ``builds.run`` jobs of one (rule,
ref) share an ordering key, so they run one at a time. Hence at most one queued and one running build per
(rule, ref), and the newest commit wins.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.builds.rules import GitRef
from dockyard.db.statements import hold_lock, insert_or_nothing
from dockyard.events import outbox
from dockyard.events.outbox import record_event
from dockyard.jobs.queue import enqueue
from dockyard.models import Build, BuildRule
from dockyard.models.base import utcnow

RUN: Final = "builds.run"
ARCHIVE_LOG: Final = "builds.archive_log"
ATTEST: Final = "builds.attest"  # SBOM, provenance, signature: handled by dockyard.provenance.tasks

QUEUED: Final = "queued"
CLONING: Final = "cloning"
BUILDING: Final = "building"
PUSHING: Final = "pushing"
SIGNING: Final = "signing"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
RUNNING_STATES: Final = (CLONING, BUILDING, PUSHING, SIGNING)
# The states a retried ``builds.run`` starts again from; a build in SIGNING has pushed: its ``builds.attest`` job
# goes on.
RESTARTABLE_STATES: Final = (QUEUED, CLONING, BUILDING, PUSHING)
FINISHED_STATES: Final = (SUCCEEDED, FAILED, CANCELLED)
STATES: Final = (QUEUED, *RUNNING_STATES, *FINISHED_STATES)

EVENT_OF_STATE: Final = {
    QUEUED: outbox.BUILD_QUEUED,
    CLONING: outbox.BUILD_STARTED,
    BUILDING: outbox.BUILD_BUILDING,
    PUSHING: outbox.BUILD_PUSHING,
    SIGNING: outbox.BUILD_SIGNING,
    SUCCEEDED: outbox.BUILD_SUCCEEDED,
    FAILED: outbox.BUILD_FAILED,
    CANCELLED: outbox.BUILD_CANCELLED,
}


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive value (SQLite hands those back) is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class BuildView:
    """One build as every surface shows it."""

    id: str
    repository: str
    rule: str | None
    source_type: str
    ref: str
    commit: str | None
    tags: tuple[str, ...]
    dockerfile: str
    context: str
    trigger: str
    actor: str
    state: str
    digest: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((as_utc(self.finished_at) - as_utc(self.started_at)).total_seconds(), 3)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def event_details(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "source_type": self.source_type,
            "ref": self.ref,
            "commit": self.commit,
            "tags": list(self.tags),
            "dockerfile": self.dockerfile,
            "build_context": self.context,
            "trigger": self.trigger,
            "state": self.state,
            "digest": self.digest,
            "error": self.error,
            "duration_seconds": self.duration_seconds,
        }


async def view_of(conn: AsyncConnection, row: Row[Any]) -> BuildView:
    rule = None
    if row.rule_id is not None:
        rule = (await conn.execute(select(BuildRule.uuid).where(BuildRule.id == row.rule_id))).scalar_one_or_none()
    return BuildView(
        id=row.uuid,
        repository=row.repository,
        rule=rule,
        source_type=row.source_type,
        ref=row.ref,
        commit=row.commit,
        tags=tuple(json.loads(row.tags)),
        dockerfile=row.dockerfile,
        context=row.context,
        trigger=row.trigger,
        actor=row.actor,
        state=row.state,
        digest=row.digest,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


async def load(conn: AsyncConnection, build_id: int) -> Row[Any] | None:
    return (await conn.execute(select(Build).where(Build.id == build_id))).first()


async def record_state_event(conn: AsyncConnection, row: Row[Any], actor: str | None = None) -> None:
    """The ``build.*`` event of the state ``row`` is in (re-read after the change, in the change's transaction)."""
    view = await view_of(conn, row)
    await record_event(
        conn,
        EVENT_OF_STATE[view.state],
        repository=view.repository,
        digest=view.digest,
        tag=view.tags[0] if view.tags else None,
        actor=actor if actor is not None else (view.actor or None),
        payload={"tags": list(view.tags), "build": view.event_details()},
    )


@dataclass(frozen=True, slots=True)
class Queued:
    """What a trigger did for one rule: the build's id, and whether it is new (False: it coalesced into the build
    already queued for the rule and ref)."""

    build: str
    new: bool


async def queue_build(
    conn: AsyncConnection,
    *,
    repository: str,
    namespace: str,
    rule_id: int,
    dockerfile: str,
    context: str,
    ref: GitRef,
    commit: str | None,
    tags: tuple[str, ...],
    trigger: str,
    actor: str,
) -> Queued:
    """Queue a build of ``ref`` (at ``commit``; None: its head when the build starts) for the rule, or coalesce into
    the one already queued for (rule, ref). In the caller's transaction; the caller wakes the job runner after."""
    key = f"{rule_id}:{ref.full}"[:600]
    for _ in range(3):
        changes: dict[str, Any] = {"tags": json.dumps(list(tags)), "trigger": trigger, "actor": actor}
        if commit is not None:
            changes["commit"] = commit
        moved = await conn.execute(
            update(Build)
            .where(Build.coalesce_key == key, Build.state == QUEUED)
            .values(**changes)
            .returning(Build.uuid)
        )
        existing = moved.scalar_one_or_none()
        if existing is not None:
            return Queued(str(existing), new=False)
        build_uuid = str(uuidlib.uuid4())
        inserted = await conn.execute(
            insert_or_nothing(conn, Build).returning(Build.id),
            {
                "uuid": build_uuid,
                "repository": repository,
                "namespace": namespace,
                "rule_id": rule_id,
                "coalesce_key": key,
                "source_type": ref.source_type,
                "ref": ref.name,
                "commit": commit,
                "tags": json.dumps(list(tags)),
                "dockerfile": dockerfile,
                "context": context,
                "trigger": trigger,
                "actor": actor,
                "state": QUEUED,
                "cancel_requested": False,
                "log_size": 0,
                "created_at": utcnow(),
            },
        )
        build_id = inserted.scalar_one_or_none()
        if build_id is None:
            continue  # another transaction queued one for this (rule, ref) just now: coalesce into it
        await enqueue(conn, RUN, {"build": int(build_id)}, ordering_key=f"{RUN}:{key}"[:255], max_attempts=3)
        row = await load(conn, int(build_id))
        assert row is not None
        await record_state_event(conn, row)
        return Queued(build_uuid, new=True)
    raise RuntimeError("could not queue or coalesce the build")  # unreachable but for pathological races


async def namespace_slot_free(conn: AsyncConnection, build_id: int, namespace: str, limit: int) -> bool:
    """Whether build ``build_id`` may start under a limit of ``limit`` running builds in ``namespace`` (0: no limit).
    Call it in the transaction that starts the build: on PostgreSQL it takes the namespace's transaction-scoped
    advisory lock, so two builders cannot both take the last slot (SQLite's writers are serialised already)."""
    if limit <= 0:
        return True
    await hold_lock(conn, f"builds:{namespace}")
    running = (
        await conn.execute(
            select(func.count())
            .select_from(Build)
            .where(Build.namespace == namespace, Build.state.in_((CLONING, BUILDING, PUSHING)), Build.id != build_id)
        )
    ).scalar_one()
    return int(running) < limit


async def postpone(conn: AsyncConnection, row: Row[Any], seconds: float) -> None:
    """Run queued build ``row`` again in ``seconds`` (a new ``builds.run`` job behind the current one of its rule and
    ref: waiting for a slot is not a failed attempt)."""
    await enqueue(
        conn,
        RUN,
        {"build": int(row.id)},
        run_at=utcnow() + timedelta(seconds=seconds),
        ordering_key=f"{RUN}:{row.coalesce_key}"[:255],
        max_attempts=3,
    )


async def change_state(
    conn: AsyncConnection,
    build_id: int,
    state: str,
    *,
    expect: tuple[str, ...],
    **values: Any,
) -> Row[Any] | None:
    """Move the build to ``state`` if it is in one of ``expect`` (with ``values``), and record the event. The
    changed row, or None when it was not in an expected state (someone else moved it: cancelled)."""
    now = utcnow()
    if state == CLONING:
        values.setdefault("started_at", now)
    if state in FINISHED_STATES:
        values.setdefault("finished_at", now)
    result = await conn.execute(
        update(Build).where(Build.id == build_id, Build.state.in_(expect)).values(state=state, **values)
    )
    if result.rowcount != 1:
        return None
    row = await load(conn, build_id)
    assert row is not None
    await record_state_event(conn, row)
    if state in FINISHED_STATES:
        await enqueue(conn, ARCHIVE_LOG, {"build": build_id}, dedupe_key=f"{ARCHIVE_LOG}:{build_id}")
    return row
