"""The event bus: the one consumer of the outbox. ``OutboxDispatcher`` reads the events no one has dispatched yet,
in id order, a batch at a time, and hands each to every registered subscriber in one transaction per batch.

A subscriber (``Subscriber``) works in two steps. ``prepare(events)`` runs outside any transaction and reads what
it needs for a whole batch (which webhooks want each event, the pushed images' platforms) — one query for the
batch rather than one per event —, so that no write lock is held while it reads. Then, in the batch's transaction,
the dispatcher claims the events — one conditional UPDATE of ``dispatched_at`` — and calls ``on_event(conn, event,
prepared)`` of every subscriber for each event it claimed, in id order; these may write rows and enqueue jobs in
that transaction (``dockyard.jobs.queue.enqueue``). Replicas dispatching at once never dispatch one event twice
(only one claim of a row succeeds), and a crash or an error before the commit leaves the events to be dispatched
again: a subscriber may be called more than once for an event, but what it writes commits once. When a batch's
transaction fails, its events are dispatched again one per transaction, so that the events before a failing one
go through and the failing one (and those after it) wait, as if each had been dispatched alone.

The composition root registers the subscribers (webhooks: deliveries; trust: verification of pushed signatures)
and runs the dispatcher next to the job runner, passing the runner's ``wake`` so that enqueued jobs start at once.
This layer knows no subscriber. ``prune_dispatched`` deletes dispatched events past their retention (a periodic
job, see ``dockyard.app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.models import Event
from dockyard.models.base import utcnow

log = logging.getLogger("dockyard.events")

BATCH = 100
PRUNE_BATCH = 5000

# Built once: the statements of every batch (a statement built anew costs its cache-key walk each time).
_PENDING = select(Event.__table__).where(Event.dispatched_at.is_(None)).order_by(Event.id).limit(bindparam("limit"))
_CLAIM = (
    update(Event)
    .where(Event.id.in_(bindparam("ids", expanding=True)), Event.dispatched_at.is_(None))
    .values(dispatched_at=bindparam("now"))
    .returning(Event.id)
)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One outbox row as subscribers see it; ``payload`` parsed."""

    id: int
    event_id: str
    type: str
    occurred_at: datetime
    actor: str | None
    repository: str | None
    tag: str | None
    digest: str | None
    media_type: str | None
    payload: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> OutboxEvent:
        return cls(
            id=row.id,
            event_id=row.event_id,
            type=row.type,
            occurred_at=row.occurred_at,
            actor=row.actor,
            repository=row.repository,
            tag=row.tag,
            digest=row.digest,
            media_type=row.media_type,
            payload=json.loads(row.payload or "{}"),
        )

    @property
    def tags(self) -> tuple[str, ...]:
        """Every tag the event touched: the payload's ``tags`` (a push records all it set), else ``tag``."""
        return tuple(self.payload.get("tags") or ([self.tag] if self.tag else []))


P = TypeVar("P")


class Subscriber(Protocol[P]):
    """Something the outbox's events are handed to. ``prepare`` reads (no transaction is open) for a batch of
    events and returns one value per event, in order; ``on_event`` writes in the claim transaction, given what
    ``prepare`` returned for that event. Both may be called again for an event after a crash or an error, so what
    ``on_event`` writes must be what a first call would have written."""

    async def prepare(self, events: Sequence[OutboxEvent]) -> Sequence[P]: ...

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: P) -> None: ...


class Unprepared:
    """For a subscriber whose ``on_event`` needs nothing read beforehand: ``prepare`` gives None for each event."""

    async def prepare(self, events: Sequence[OutboxEvent]) -> list[None]:
        return [None] * len(events)


class OutboxDispatcher:
    """Hands the outbox's events, in id order, to ``subscribers`` (in their order). ``wake`` is called after a
    batch that dispatched events (the job runner's ``wake``: subscribers may have enqueued jobs)."""

    def __init__(
        self,
        db: Database,
        subscribers: Sequence[Subscriber[Any]],
        *,
        poll_seconds: float,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.subscribers = tuple(subscribers)
        self.poll_seconds = poll_seconds
        self._wake = wake
        self._poke = asyncio.Event()
        self._failing: int | None = None  # the event whose dispatch failed last

    def poke(self) -> None:
        """Look for new events now (in-process writers may call it after commit)."""
        self._poke.set()

    async def run(self) -> None:
        """Dispatch forever: whenever there is work, else every ``poll_seconds``."""
        while True:
            try:
                done = await self.run_once()
            except Exception:
                log.exception("event dispatch failed; trying again")
                done = 0
            if done == 0:
                self._poke.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), self.poll_seconds)

    async def run_once(self, limit: int = BATCH) -> int:
        """Dispatch up to ``limit`` pending events; returns how many were looked at."""
        async with self.db.read() as conn:
            rows = (await conn.execute(_PENDING, {"limit": limit})).all()
        if not rows:
            return 0
        events = [OutboxEvent.from_row(row) for row in rows]
        if len(events) == 1 or events[0].id == self._failing:
            dispatched = await self._one_by_one(events)  # (the first failed last time: try it alone, not its batch)
        else:
            try:
                dispatched = await self._dispatch(events)
            except Exception:
                log.debug("a batch of %d events failed; dispatching them one at a time", len(events), exc_info=True)
                dispatched = await self._one_by_one(events)
        if dispatched and self._wake is not None:
            self._wake()
        return len(rows)

    async def _one_by_one(self, events: Sequence[OutboxEvent]) -> bool:
        """Dispatch ``events`` one per transaction; the failing one raises (remembered, so that the next attempt
        starts with it alone), after the ones before it went through."""
        dispatched = False
        for event in events:
            try:
                dispatched = await self.dispatch(event) or dispatched
            except Exception:
                self._failing = event.id
                raise
        self._failing = None
        return dispatched

    async def dispatch(self, event: OutboxEvent) -> bool:
        """Hand one event to every subscriber and mark it dispatched, in one transaction. Returns False when
        another dispatcher had claimed it first."""
        return await self._dispatch([event])

    async def _dispatch(self, events: Sequence[OutboxEvent]) -> bool:
        """Claim ``events`` and hand each claimed one to every subscriber, in one transaction; whether any was
        claimed (the others had been claimed by another dispatcher)."""
        prepared = [await subscriber.prepare(events) for subscriber in self.subscribers]
        async with self.db.write() as conn:
            claimed = set(
                (await conn.execute(_CLAIM, {"ids": [event.id for event in events], "now": utcnow()})).scalars()
            )
            for index, event in enumerate(events):
                if event.id not in claimed:
                    continue
                for subscriber, states in zip(self.subscribers, prepared, strict=True):
                    await subscriber.on_event(conn, event, states[index])
            return bool(claimed)


async def prune_dispatched(db: Database, retention: timedelta, batch: int = PRUNE_BATCH) -> int:
    """Delete events dispatched more than ``retention`` ago (the outbox is not an archive: the audit log and the
    delivery history keep what must be kept). Bounded statements; returns how many went."""
    cutoff = utcnow() - retention
    removed = 0
    while True:
        async with db.write() as conn:
            ids = (
                (
                    await conn.execute(
                        select(Event.id).where(Event.dispatched_at < cutoff).order_by(Event.id).limit(batch)
                    )
                )
                .scalars()
                .all()
            )
            if ids:
                await conn.execute(delete(Event).where(Event.id.in_(ids)))
        removed += len(ids)
        if len(ids) < batch:
            return removed
