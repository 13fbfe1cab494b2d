"""Replication's background work: the ``replication.run`` job handler, ``ReplicationSubscriber`` (the event bus's
subscriber that starts the runs of push rules triggered by events) and ``enqueue_due_runs`` (the periodic check
that starts scheduled rules' runs).

A run whose artifacts failed (a destination down half-way, say) is tried again after
``replication_retry_seconds`` while attempts remain (``replication_max_attempts``); every attempt copies only
what the destination still lacks, so the run ends with the destination consistent, or ``failed`` with every
failure in its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.names import namespace_of
from dockyard.db.engine import Database
from dockyard.events.bus import OutboxEvent
from dockyard.events.outbox import MANIFEST_PUSHED, TAG_DELETED
from dockyard.jobs.handlers import Handler, JobContext, Retry
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.models import ReplicationRule
from dockyard.models.base import utcnow
from dockyard.proxy.upstream import UpstreamClient
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.replication.copier import signature_subject
from dockyard.replication.rules import EVENT, PUSH, RUN_JOB, SCHEDULE, enqueue_run, matches, pinned_transport
from dockyard.replication.runs import RunExecutor
from dockyard.settings import Settings


@register(RUN_JOB)
def run_replication(env: JobEnvironment) -> Handler:
    client = UpstreamClient(env.settings.proxy_upstream_timeout_seconds, transport=pinned_transport(env.settings))
    env.resources.push_async_callback(client.aclose)
    registry = Registry.build(RegistryContext(db=env.db, store=env.store, settings=env.settings))
    executor = RunExecutor(env.db, registry, client, env.settings)

    async def handle(job: JobContext) -> None:
        over = await executor.attempt(int(job.payload["run"]), job.attempt, job.is_last_attempt)
        env.wake()  # the outbox's event, the rule's next run
        if not over:
            raise Retry(env.settings.replication_retry_seconds, "artifacts failed; trying again")

    return handle


@dataclass(frozen=True, slots=True)
class _Start:
    rule_id: int
    namespace: str
    scope: dict[str, Any]


def event_scopes(rule: Any, event: OutboxEvent) -> list[dict[str, Any]]:
    """What a push rule replicates for ``event`` (none: the event is not the rule's)."""
    repository = event.repository or ""
    path = repository.split("/", 1)[1] if "/" in repository else ""
    if not path or not matches(rule.repository_filter, path):
        return []
    if event.type == TAG_DELETED:
        tag = event.tag or ""
        if rule.replicate_deletes and matches(rule.tag_filter, tag) and signature_subject(tag) is None:
            return [{"repository": repository, "delete_tags": [tag]}]
        return []
    subjects = {signature_subject(tag) for tag in event.tags} - {None}
    if event.payload.get("subject"):
        subjects.add(str(event.payload["subject"]))
    if subjects:
        return [{"repository": repository, "subject": subject} for subject in sorted(s for s in subjects if s)]
    tags = [tag for tag in event.tags if matches(rule.tag_filter, tag)]
    return [{"repository": repository, "tags": tags}] if tags else []


class ReplicationSubscriber:
    """Starts a run of each enabled event-triggered push rule of the namespace that an event concerns: pushed
    tags matching its filters, signatures and referrers of images (the image's tags, to copy them with their
    referrers), and — with ``replicate_deletes`` — deleted tags."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def prepare(self, events: Sequence[OutboxEvent]) -> list[list[_Start]]:
        """For each event, the runs it starts; the rules of the whole batch are read in one query."""
        kinds = (MANIFEST_PUSHED, TAG_DELETED)
        wanted = [namespace_of(e.repository) if e.repository and e.type in kinds else None for e in events]
        namespaces = sorted({namespace for namespace in wanted if namespace is not None})
        if not namespaces:
            return [[] for _ in events]
        async with self.db.read() as conn:
            rules = (
                await conn.execute(
                    select(ReplicationRule.__table__)
                    .where(
                        ReplicationRule.namespace.in_(namespaces),
                        ReplicationRule.direction == PUSH,
                        ReplicationRule.trigger == EVENT,
                        ReplicationRule.enabled == true(),
                    )
                    .order_by(ReplicationRule.id)
                )
            ).all()
        return [
            [
                _Start(rule.id, namespace, scope)
                for rule in rules
                if rule.namespace == namespace
                for scope in event_scopes(rule, event)
            ]
            if namespace is not None
            else []
            for event, namespace in zip(events, wanted, strict=True)
        ]

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: list[_Start]) -> None:
        for start in prepared:
            await enqueue_run(
                conn,
                start.rule_id,
                start.namespace,
                EVENT,
                event.actor or "",
                start.scope,
                self.settings.replication_max_attempts,
            )


async def enqueue_due_runs(db: Database, settings: Settings) -> int:
    """Start a run of every enabled scheduled rule whose interval has passed (the periodic job)."""
    now = utcnow()
    started = 0
    async with db.write() as conn:
        rules = (
            await conn.execute(
                select(ReplicationRule.__table__).where(
                    ReplicationRule.trigger == SCHEDULE,
                    ReplicationRule.enabled == true(),
                    ReplicationRule.schedule_seconds.is_not(None),
                    or_(ReplicationRule.last_scheduled_at.is_(None), ReplicationRule.last_scheduled_at < now),
                )
            )
        ).all()
        for rule in rules:
            last = rule.last_scheduled_at
            if last is not None and last + timedelta(seconds=rule.schedule_seconds) > now:
                continue
            claimed = await conn.execute(
                update(ReplicationRule)
                .where(ReplicationRule.id == rule.id, ReplicationRule.last_scheduled_at.is_not_distinct_from(last))
                .values(last_scheduled_at=now)
            )
            if claimed.rowcount == 1:
                await enqueue_run(conn, rule.id, rule.namespace, SCHEDULE, "", {}, settings.replication_max_attempts)
                started += 1
    return started
