"""The event bus: the one consumer of the outbox. ``OutboxDispatcher`` reads the events no one has dispatched yet,
in id order, and hands each to every registered subscriber in one transaction per event.

A subscriber (``Subscriber``) works in two steps. ``prepare(event)`` runs outside any transaction and reads what
it needs (which webhooks want the event, the pushed image's platforms), so that no write lock is held while it
reads. Then, in the event's transaction, the dispatcher claims the event — a conditional UPDATE of
``dispatched_at`` — and calls ``on_event(conn, event, prepared)`` of every subscriber, which may write rows and
enqueue jobs in that transaction (``dockyard.jobs.queue.enqueue``). Replicas dispatching at once never dispatch
one event twice (only one claim succeeds), and a crash or an error before the commit leaves the event to be
dispatched again: a subscriber may be called more than once for an event, but what it writes commits once.

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

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.models import Event
from dockyard.models.base import utcnow

log = logging.getLogger("dockyard.events")

BATCH = 100
PRUNE_BATCH = 5000


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
    """Something the outbox's events are handed to. ``prepare`` reads (no transaction is open); ``on_event`` writes
    in the event's claim transaction, given what ``prepare`` returned. Both may be called again for one event
    after a crash or an error, so what ``on_event`` writes must be what a first call would have written."""

    async def prepare(self, event: OutboxEvent) -> P: ...

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: P) -> None: ...


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
            rows = (
                await conn.execute(select(Event).where(Event.dispatched_at.is_(None)).order_by(Event.id).limit(limit))
            ).all()
        dispatched = False
        for row in rows:
            dispatched = await self.dispatch(OutboxEvent.from_row(row)) or dispatched
        if dispatched and self._wake is not None:
            self._wake()
        return len(rows)

    async def dispatch(self, event: OutboxEvent) -> bool:
        """Hand one event to every subscriber and mark it dispatched, in one transaction. Returns False when
        another dispatcher had claimed it first."""
        prepared = [await subscriber.prepare(event) for subscriber in self.subscribers]
        async with self.db.write() as conn:
            claimed = await conn.execute(
                update(Event).where(Event.id == event.id, Event.dispatched_at.is_(None)).values(dispatched_at=utcnow())
            )
            if claimed.rowcount != 1:
                return False
            for subscriber, state in zip(self.subscribers, prepared, strict=True):
                await subscriber.on_event(conn, event, state)
            return True


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
