"""Enqueueing: a job exists iff its transaction committed; dedupe keys; payload rules; retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from dockyard.db.engine import Database
from dockyard.jobs import runner as runner_module
from dockyard.jobs.queue import DEAD, FAILED, QUEUED, RUNNING, SUCCEEDED, enqueue
from dockyard.models.base import utcnow
from dockyard.settings import Settings
from tests.support.jobs import add_job, job_row, job_settings, jobs_in, make_runner, set_columns


class Boom(Exception):
    pass


async def test_a_job_enqueued_in_a_rolled_back_transaction_does_not_exist(db: Database) -> None:
    async def enqueue_then_fail() -> None:
        async with db.write() as conn:
            assert await enqueue(conn, "test.noop", {"repository_id": 1}) is not None
            raise Boom

    with pytest.raises(Boom):
        await enqueue_then_fail()
    assert await jobs_in(db) == []
    job_id = await add_job(db, "test.noop", {"repository_id": 1})
    row = await job_row(db, job_id)
    assert (row.kind, row.state, row.attempts, row.max_attempts) == ("test.noop", QUEUED, 0, 25)
    assert row.payload == '{"repository_id":1}'
    assert row.run_at <= utcnow()


async def test_enqueues_with_one_ordering_key_wait_for_each_other_to_commit(db: Database, url: str) -> None:
    """Ids follow commit order per key: a job that commits later never gets the lower id (PostgreSQL takes an
    advisory lock on the key; SQLite serialises writers anyway)."""

    async def enqueue_in(database: Database) -> int | None:
        async with database.write() as conn:
            return await enqueue(conn, "test.ordered", {}, ordering_key="hook:1")

    other = Database(url)
    try:
        async with db.write() as conn:
            first = await enqueue(conn, "test.ordered", {}, ordering_key="hook:1")
            second_task = asyncio.create_task(enqueue_in(other))
            await asyncio.sleep(0.3)
            assert not second_task.done()  # waits until this transaction commits
        second = await asyncio.wait_for(second_task, 10)
    finally:
        await other.close()
    assert first is not None
    assert second is not None
    assert second > first


async def test_dedupe_key_is_unique_among_unfinished_jobs(db: Database) -> None:
    first = await add_job(db, "test.noop", dedupe_key="test.noop:7")
    async with db.write() as conn:
        assert await enqueue(conn, "test.noop", {}, dedupe_key="test.noop:7") is None
        other = await enqueue(conn, "test.noop", {}, dedupe_key="test.noop:8")
    assert other is not None
    await set_columns(db, first, state=RUNNING)
    async with db.write() as conn:
        assert await enqueue(conn, "test.noop", {}, dedupe_key="test.noop:7") is None
    await set_columns(db, first, state=SUCCEEDED, finished_at=utcnow())
    async with db.write() as conn:
        again = await enqueue(conn, "test.noop", {}, dedupe_key="test.noop:7")
    assert again is not None
    assert again > first
    # A deduplicated enqueue does not spoil the rest of the caller's transaction.
    async with db.write() as conn:
        assert await enqueue(conn, "test.noop", {}, dedupe_key="test.noop:7") is None
        assert await enqueue(conn, "test.noop", {"after": "dedupe"}) is not None
    assert len(await jobs_in(db, QUEUED)) == 3


@pytest.mark.parametrize(
    ("payload", "options", "message"),
    [
        ({"when": utcnow()}, {}, "plain JSON"),
        ({"x": float("nan")}, {}, "plain JSON"),
        ({"blob": "x" * 70_000}, {}, "limit"),
        ({}, {"max_attempts": 0}, "max_attempts"),
        ({}, {"ordering_key": ""}, "ordering_key"),
        ({}, {"dedupe_key": "k" * 256}, "dedupe_key"),
    ],
)
async def test_payloads_are_small_plain_json(
    db: Database, payload: dict[str, object], options: dict[str, object], message: str
) -> None:
    async with db.write() as conn:
        with pytest.raises(ValueError, match=message):
            await enqueue(conn, "test.noop", payload, **options)  # type: ignore[arg-type]


async def test_retention_deletes_old_finished_jobs_in_batches(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Settings = job_settings(tmp_path, jobs_retention_seconds=3600)
    monkeypatch.setattr(runner_module, "PURGE_BATCH", 2)
    old = utcnow() - timedelta(hours=2)
    old_finished = []
    for state in (SUCCEEDED, FAILED, DEAD, SUCCEEDED, SUCCEEDED):
        job_id = await add_job(db, "test.noop")
        await set_columns(db, job_id, state=state, finished_at=old)
        old_finished.append(job_id)
    recent = await add_job(db, "test.noop")
    await set_columns(db, recent, state=SUCCEEDED, finished_at=utcnow() - timedelta(minutes=30))
    waiting = await add_job(db, "test.noop", run_at=old)  # old but unfinished: kept
    deleted = await make_runner(db, settings, {}).purge_finished()
    assert deleted == 5
    assert await jobs_in(db) == [recent, waiting]
