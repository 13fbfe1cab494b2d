"""The event bus (``dockyard.events.bus``) against a real database: every subscriber sees each outbox event once, in
id order, in the transaction that claims it, prepared a batch at a time; a failing subscriber leaves the event (and
what the others wrote for it) to be dispatched again while the events before it go through; racing dispatchers
never dispatch one event twice; old dispatched events are pruned."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.events.bus import OutboxDispatcher, OutboxEvent, prune_dispatched
from dockyard.events.outbox import MANIFEST_PUSHED, TAG_DELETED, record_event
from dockyard.jobs.queue import enqueue
from dockyard.models import Event, Job
from dockyard.models.base import utcnow
from tests.support.jobs import eventually


class Recorder:
    """Records the events it is handed and enqueues one job per event in the claim transaction."""

    def __init__(self, *, fail_on: str | None = None) -> None:
        self.batches: list[list[int]] = []
        self.seen: list[tuple[int, str]] = []
        self.fail_on = fail_on

    async def prepare(self, events: Sequence[OutboxEvent]) -> list[str]:
        self.batches.append([event.id for event in events])
        return [f"prepared:{event.event_id}" for event in events]

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: str) -> None:
        assert prepared == f"prepared:{event.event_id}"
        await enqueue(conn, "test.bus", {"event": event.event_id})
        if event.tag == self.fail_on:
            raise RuntimeError("subscriber failed")
        self.seen.append((event.id, event.type))


async def record(db: Database, count: int, event_type: str = MANIFEST_PUSHED) -> list[str]:
    ids = []
    async with db.write() as conn:
        for n in range(count):
            ids.append(await record_event(conn, event_type, repository="acme/app", tag=f"t{n}"))
    return ids


async def count(db: Database, statement: Any) -> int:
    async with db.read() as conn:
        return int((await conn.execute(statement)).scalar_one())


async def job_tags(db: Database) -> list[str]:
    """The tag of the event behind each test job, in job order."""
    async with db.read() as conn:
        tags = {row.event_id: row.tag for row in await conn.execute(select(Event.event_id, Event.tag))}
        payloads = (await conn.execute(select(Job.payload).where(Job.kind == "test.bus").order_by(Job.id))).scalars()
        return [str(tags[json.loads(payload)["event"]]) for payload in payloads]


UNDISPATCHED = select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None))
JOBS = select(func.count()).select_from(Job).where(Job.kind == "test.bus")


async def test_every_subscriber_sees_each_event_once_in_order(db: Database) -> None:
    await record(db, 3)
    await record(db, 2, TAG_DELETED)
    first, second = Recorder(), Recorder()
    woken: list[bool] = []
    bus = OutboxDispatcher(db, [first, second], poll_seconds=0.05, wake=lambda: woken.append(True))
    assert await bus.run_once() == 5
    assert first.seen == second.seen
    assert [kind for _, kind in first.seen] == [MANIFEST_PUSHED] * 3 + [TAG_DELETED] * 2
    assert [event_id for event_id, _ in first.seen] == sorted(event_id for event_id, _ in first.seen)
    assert await count(db, UNDISPATCHED) == 0
    assert await count(db, JOBS) == 10
    assert woken == [True]
    assert first.batches == second.batches == [[event_id for event_id, _ in first.seen]]  # one read for all five
    assert await bus.run_once() == 0  # nothing is dispatched twice
    assert len(first.seen) == 5


async def test_a_failing_subscriber_leaves_the_event_to_dispatch_again(db: Database) -> None:
    await record(db, 3)
    failing = Recorder(fail_on="t1")
    other = Recorder()
    bus = OutboxDispatcher(db, [other, failing], poll_seconds=0.05)
    with pytest.raises(RuntimeError, match="subscriber failed"):
        await bus.run_once()
    # The batch's transaction failed at t1; dispatched again one at a time, t0 went through, t1 failed again, and
    # t2 waits behind it. (Subscribers were called for t0 twice: only the second call's writes committed.)
    async with db.read() as conn:
        left = set((await conn.execute(select(Event.tag).where(Event.dispatched_at.is_(None)))).scalars())
    assert left == {"t1", "t2"}
    assert await count(db, JOBS) == 2  # t0's two jobs, once; t1's enqueues went with its transactions
    assert await job_tags(db) == ["t0", "t0"]
    failing.batches.clear()
    with pytest.raises(RuntimeError, match="subscriber failed"):
        await bus.run_once()  # still failing: tried alone, not with the batch behind it
    assert [len(batch) for batch in failing.batches] == [1]
    failing.fail_on = None
    assert await bus.run_once() == 2
    assert await count(db, UNDISPATCHED) == 0
    assert await count(db, JOBS) == 6
    assert sorted(await job_tags(db)) == ["t0", "t0", "t1", "t1", "t2", "t2"]
    failing.batches.clear()
    await record(db, 3)
    assert await bus.run_once() == 3
    assert [len(batch) for batch in failing.batches] == [3]  # batches again once it went through


async def test_racing_dispatchers_dispatch_each_event_once(db: Database) -> None:
    await record(db, 40)
    subscribers = [Recorder() for _ in range(3)]
    buses = [OutboxDispatcher(db, [subscriber], poll_seconds=0.05) for subscriber in subscribers]
    await asyncio.gather(*(bus.run_once() for bus in buses))
    seen = [event_id for subscriber in subscribers for event_id, _ in subscriber.seen]
    assert len(seen) == len(set(seen)) == 40
    assert await count(db, JOBS) == 40


async def test_the_running_bus_picks_up_new_events(db: Database) -> None:
    subscriber = Recorder()
    bus = OutboxDispatcher(db, [subscriber], poll_seconds=0.05)
    task = asyncio.create_task(bus.run())
    try:
        await record(db, 2)
        bus.poke()

        async def both_seen() -> bool:
            return len(subscriber.seen) == 2

        await eventually(both_seen, what="the bus to dispatch both events")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_prune_deletes_only_old_dispatched_events(db: Database) -> None:
    old, recent, pending = (await record(db, 1)) + (await record(db, 1)) + (await record(db, 1))
    async with db.write() as conn:
        await conn.execute(
            update(Event).where(Event.event_id == old).values(dispatched_at=utcnow() - timedelta(days=31))
        )
        await conn.execute(update(Event).where(Event.event_id == recent).values(dispatched_at=utcnow()))
    assert await prune_dispatched(db, timedelta(days=30), batch=1) == 1
    async with db.read() as conn:
        left = set((await conn.execute(select(Event.event_id))).scalars())
    assert left == {recent, pending}
