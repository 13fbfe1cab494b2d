"""The job runner on the test backend: outcomes (success, Retry, Fail, exceptions, attempts, horizon), ordering
keys, several runners on one queue, leases (expiry, renewal, loss), graceful stop and wake-ups."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from dockyard.db.engine import Database
from dockyard.jobs import runner as runner_module
from dockyard.jobs.handlers import Fail, Handler, JobContext, Retry
from dockyard.jobs.queue import DEAD, FAILED, QUEUED, RUNNING, SUCCEEDED
from dockyard.models.base import utcnow
from dockyard.settings import Settings
from tests.support.holders import dead_holder
from tests.support.jobs import (
    add_job,
    eventually,
    job_row,
    job_settings,
    jobs_in,
    make_runner,
    running,
    set_columns,
    until_state,
)


async def test_a_job_runs_once_and_succeeds(db: Database, settings: Settings) -> None:
    seen: list[tuple[int, str, dict[str, object], int]] = []

    async def handle(job: JobContext) -> None:
        seen.append((job.job_id, job.kind, job.payload, job.attempt))

    runner = make_runner(db, settings, {"test.ok": handle})
    async with running(runner):
        job_id = await add_job(db, "test.ok", {"repository_id": 7})
        runner.wake()
        row = await until_state(db, job_id, SUCCEEDED)
    assert seen == [(job_id, "test.ok", {"repository_id": 7}, 1)]
    assert (row.attempts, row.lease_owner, row.lease_until, row.last_error) == (1, None, None, None)
    assert row.finished_at is not None
    assert row.started_at is not None


async def test_retry_after_is_honoured(db: Database, settings: Settings) -> None:
    attempts: list[int] = []

    async def handle(job: JobContext) -> None:
        attempts.append(job.attempt)
        if job.attempt == 1:
            raise Retry(after=60, reason="429 Too Many Requests; Retry-After: 60")

    async with running(make_runner(db, settings, {"test.retry": handle})):
        job_id = await add_job(db, "test.retry")
        before = utcnow()

        async def retried() -> bool:
            row = await job_row(db, job_id)
            return row.state == QUEUED and row.attempts == 1

        await eventually(retried)
        row = await job_row(db, job_id)
        assert timedelta(seconds=59) <= row.run_at - before <= timedelta(seconds=62)
        assert row.last_error == "429 Too Many Requests; Retry-After: 60"
        assert row.lease_owner is None
        await asyncio.sleep(0.2)
        assert attempts == [1]  # not before its time
        await set_columns(db, job_id, run_at=utcnow())  # the minute has passed
        row = await until_state(db, job_id, SUCCEEDED)
    assert attempts == [1, 2]
    assert row.attempts == 2


async def test_exceptions_are_logged_and_retried_with_growing_backoff(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = job_settings(tmp_path, jobs_backoff_base_seconds=2.0, jobs_backoff_cap_seconds=3600.0)
    delays: list[tuple[int, float, float]] = []

    def no_wait(attempt: int, *, base: float, cap: float) -> float:
        delays.append((attempt, base, cap))
        return 0.0

    monkeypatch.setattr(runner_module, "backoff_delay", no_wait)

    async def handle(job: JobContext) -> None:
        if job.attempt < 4:
            raise ConnectionError(f"receiver unreachable (attempt {job.attempt})")

    with caplog.at_level(logging.ERROR, logger="dockyard.jobs"):
        async with running(make_runner(db, settings, {"test.flaky": handle})):
            row = await until_state(db, await add_job(db, "test.flaky"), SUCCEEDED)
    assert row.attempts == 4
    assert row.last_error == "ConnectionError: receiver unreachable (attempt 3)"
    assert delays == [(1, 2.0, 3600.0), (2, 2.0, 3600.0), (3, 2.0, 3600.0)]
    logged = [record for record in caplog.records if "raised" in record.getMessage()]
    assert len(logged) == 3
    assert all(record.exc_info for record in logged)


async def test_max_attempts_makes_a_job_dead(db: Database, settings: Settings) -> None:
    calls = Counter[int]()

    async def handle(job: JobContext) -> None:
        calls[job.job_id] += 1
        raise Retry(after=0, reason="still failing")

    async with running(make_runner(db, settings, {"test.hopeless": handle})):
        job_id = await add_job(db, "test.hopeless", max_attempts=3)
        row = await until_state(db, job_id, DEAD)
    assert calls[job_id] == 3
    assert row.attempts == 3
    assert row.last_error == "gave up after 3 attempts: still failing"
    assert row.finished_at is not None


async def test_fail_is_permanent(db: Database, settings: Settings) -> None:
    calls: list[int] = []

    async def handle(job: JobContext) -> None:
        calls.append(job.attempt)
        raise Fail("410 Gone: the receiver was removed")

    async with running(make_runner(db, settings, {"test.gone": handle})):
        row = await until_state(db, await add_job(db, "test.gone"), FAILED)
        await asyncio.sleep(0.2)
    assert calls == [1]
    assert (row.attempts, row.last_error) == (1, "410 Gone: the receiver was removed")


async def test_the_horizon_ends_retries_and_stale_jobs(db: Database, settings: Settings) -> None:
    calls: list[str] = []

    async def handle(job: JobContext) -> None:
        calls.append(job.payload["name"])
        raise Retry(after=60, reason="503")

    async with running(make_runner(db, settings, {"test.horizon": handle})):
        soon = await add_job(db, "test.horizon", {"name": "soon"}, expires_at=utcnow() + timedelta(seconds=10))
        stale = await add_job(db, "test.horizon", {"name": "stale"}, expires_at=utcnow() - timedelta(seconds=1))
        soon_row = await until_state(db, soon, DEAD)
        stale_row = await until_state(db, stale, DEAD)
    assert calls == ["soon"]  # the stale job never ran
    assert soon_row.last_error == "next attempt would fall after its horizon: 503"
    assert stale_row.attempts == 0
    assert stale_row.last_error is not None
    assert "horizon" in stale_row.last_error


async def test_ordering_key_serializes_jobs_in_id_order_even_when_the_head_retries(
    db: Database, url: str, settings: Settings
) -> None:
    events: list[tuple[str, str, int]] = []

    async def handle(job: JobContext) -> None:
        name = job.payload["name"]
        events.append(("start", name, job.attempt))
        await asyncio.sleep(0.03)
        if name == "a1" and job.attempt == 1:
            events.append(("retry", name, 1))
            raise Retry(after=0.4, reason="head of the line retries")
        events.append(("end", name, job.attempt))

    other_db = Database(url)
    runners = [
        make_runner(db, settings, {"test.ordered": handle}),
        make_runner(other_db, settings, {"test.ordered": handle}),
    ]
    try:
        async with db.write() as conn:
            from dockyard.jobs.queue import enqueue

            for name, key in [("a1", "hook:1"), ("b1", "hook:2"), ("a2", "hook:1"), ("c1", None), ("a3", "hook:1")]:
                await enqueue(conn, "test.ordered", {"name": name}, ordering_key=key)
            for name, key in [("b2", "hook:2"), ("c2", None), ("a4", "hook:1")]:
                await enqueue(conn, "test.ordered", {"name": name}, ordering_key=key)
        async with running(*runners):
            for runner in runners:
                runner.wake()

            async def all_done() -> bool:
                return len(await jobs_in(db, SUCCEEDED)) == 8

            await eventually(all_done)
    finally:
        await other_db.close()

    def of(prefix: str) -> list[tuple[str, str, int]]:
        return [event for event in events if event[1].startswith(prefix)]

    assert of("a") == [
        ("start", "a1", 1),
        ("retry", "a1", 1),
        ("start", "a1", 2),
        ("end", "a1", 2),
        ("start", "a2", 1),
        ("end", "a2", 1),
        ("start", "a3", 1),
        ("end", "a3", 1),
        ("start", "a4", 1),
        ("end", "a4", 1),
    ]
    assert of("b") == [("start", "b1", 1), ("end", "b1", 1), ("start", "b2", 1), ("end", "b2", 1)]
    # Other keys and unkeyed jobs did not wait for hook:1's retry.
    second_try = events.index(("start", "a1", 2))
    for name in ("b1", "b2", "c1", "c2"):
        assert events.index(("end", name, 1)) < second_try


async def test_runners_never_run_one_job_at_once(db: Database, url: str, settings: Settings) -> None:
    in_flight: set[int] = set()
    overlaps: list[int] = []
    runs = Counter[int]()
    by_runner = Counter[str]()

    def handler(name: str) -> Handler:
        async def handle(job: JobContext) -> None:
            if job.job_id in in_flight:
                overlaps.append(job.job_id)
            in_flight.add(job.job_id)
            runs[job.job_id] += 1
            by_runner[name] += 1
            await asyncio.sleep(random.uniform(0, 0.005))
            in_flight.discard(job.job_id)

        return handle

    # Four runners, each with its own engine and connection pool (as separate processes would have), claiming in
    # small batches so that their claims race often.
    settings = settings.model_copy(update={"jobs_concurrency": 3, "jobs_poll_seconds": 0.01})
    databases = [db, *(Database(url) for _ in range(3))]
    runners = [make_runner(database, settings, {"test.once": handler(f"r{n}")}) for n, database in enumerate(databases)]
    try:
        async with running(*runners):
            async with db.write() as conn:
                from dockyard.jobs.queue import enqueue

                ids: list[int] = []
                for n in range(150):
                    job_id = await enqueue(conn, "test.once", {"n": n})
                    assert job_id is not None  # no dedupe key: always queued
                    ids.append(job_id)
            for runner in runners:
                runner.wake()

            async def all_done() -> bool:
                return len(await jobs_in(db, SUCCEEDED)) == 150

            await eventually(all_done, within=40)
    finally:
        for database in databases[1:]:
            await database.close()
    assert overlaps == []
    assert sorted(runs) == sorted(ids)
    assert set(runs.values()) == {1}
    assert len(by_runner) >= 2


async def test_concurrent_claims_never_overlap(db: Database, url: str, settings: Settings) -> None:
    async def handle(job: JobContext) -> None:
        return None

    ids = [await add_job(db, "test.claim", {"n": n}) for n in range(30)]
    databases = [db, Database(url), Database(url)]  # three connection pools: three "processes"
    runners = [make_runner(database, settings, {"test.claim": handle}) for database in databases]
    claimed: list[int] = []
    try:
        for _ in range(4):
            batches = await asyncio.gather(*(runner.claim(4) for runner in runners))
            claimed += [job.id for batch in batches for job in batch]
    finally:
        for database in databases[1:]:
            await database.close()
    assert len(claimed) == len(set(claimed)), "a job was claimed twice"
    assert sorted(claimed) == ids


async def test_a_dead_runners_jobs_are_picked_up_after_the_lease(db: Database, tmp_path: Path) -> None:
    settings = job_settings(tmp_path, jobs_lease_seconds=1)
    attempts: list[tuple[int, int]] = []

    async def handle(job: JobContext) -> None:
        attempts.append((job.job_id, job.attempt))

    ids = [await add_job(db, "test.orphan", {"n": n}) for n in range(3)]
    crashed = make_runner(db, settings, {"test.orphan": handle}, owner="crashed-runner")
    assert [job.id for job in await crashed.claim(10)] == ids  # claimed, then the runner "dies"
    row = await job_row(db, ids[0])
    assert (row.state, row.lease_owner, row.attempts) == (RUNNING, "crashed-runner", 1)
    started = time.monotonic()
    async with running(make_runner(db, settings, {"test.orphan": handle}, owner="survivor")):
        await asyncio.sleep(0.3)
        assert attempts == []  # the lease still holds
        for job_id in ids:
            await until_state(db, job_id, SUCCEEDED)
    assert time.monotonic() - started >= 0.7
    assert sorted(attempts) == [(job_id, 2) for job_id in ids]


async def test_a_runner_that_died_on_this_machine_is_not_waited_for(db: Database, tmp_path: Path) -> None:
    settings = job_settings(tmp_path, jobs_lease_seconds=600)
    attempts: list[tuple[int, int]] = []

    async def handle(job: JobContext) -> None:
        attempts.append((job.job_id, job.attempt))

    ids = [await add_job(db, "test.orphan", {"n": n}) for n in range(2)]
    other = await add_job(db, "test.orphan", {"n": "live"})
    crashed = make_runner(db, settings, {"test.orphan": handle}, owner=dead_holder())  # its process has exited
    assert [job.id for job in await crashed.claim(2)] == ids
    alive = make_runner(db, settings, {"test.orphan": handle}, owner=f"elsewhere:{'0' * 10}:1:00000000")
    assert [job.id for job in await alive.claim(1)] == [other]  # a runner of another machine: not known dead
    async with running(make_runner(db, settings, {"test.orphan": handle}, owner="survivor")):
        for job_id in ids:
            await until_state(db, job_id, SUCCEEDED, within=10)  # long before the 600 s lease
        assert (await job_row(db, other)).state == RUNNING
    assert sorted(attempts) == [(job_id, 2) for job_id in ids]


async def test_a_long_job_keeps_its_lease(db: Database, url: str, tmp_path: Path) -> None:
    # Two seconds of lease (renewed every 0.67 s) and a job of five: the job outlives its first lease twice over,
    # with room for a loaded machine's late renewal (a 1 s lease was lost under the two passes' load in CI).
    settings = job_settings(tmp_path, jobs_lease_seconds=2)
    runs = Counter[int]()

    async def handle(job: JobContext) -> None:
        runs[job.job_id] += 1
        await asyncio.sleep(5)

    other_db = Database(url)
    try:
        runners = [
            make_runner(db, settings, {"test.long": handle}),
            make_runner(other_db, settings, {"test.long": handle}),
        ]
        async with running(*runners):
            row = await until_state(db, await add_job(db, "test.long"), SUCCEEDED)
    finally:
        await other_db.close()
    assert list(runs.values()) == [1]
    assert row.attempts == 1


async def test_heartbeat_raises_lease_lost_when_another_runner_took_the_job(db: Database, settings: Settings) -> None:
    started = asyncio.Event()
    proceed = asyncio.Event()
    side_effects: list[int] = []

    async def handle(job: JobContext) -> None:
        started.set()
        await proceed.wait()
        await job.heartbeat()  # raises LeaseLost: the job is someone else's now
        side_effects.append(job.job_id)

    runner = make_runner(db, settings, {"test.stolen": handle})
    async with running(runner):
        job_id = await add_job(db, "test.stolen")
        await asyncio.wait_for(started.wait(), 10)
        await set_columns(db, job_id, lease_owner="another-runner")
        proceed.set()

        async def finished() -> bool:
            return not runner.running_jobs

        await eventually(finished)
    row = await job_row(db, job_id)
    assert side_effects == []
    assert (row.state, row.lease_owner, row.attempts) == (RUNNING, "another-runner", 1)  # not overwritten


async def test_a_lost_lease_cancels_the_handler(db: Database, tmp_path: Path) -> None:
    settings = job_settings(tmp_path, jobs_lease_seconds=1)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handle(job: JobContext) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with running(make_runner(db, settings, {"test.stolen": handle})):
        job_id = await add_job(db, "test.stolen")
        await asyncio.wait_for(started.wait(), 10)
        await set_columns(db, job_id, lease_owner="another-runner")
        await asyncio.wait_for(cancelled.wait(), 5)  # at the next renewal, a third of the lease later
    row = await job_row(db, job_id)
    assert (row.state, row.lease_owner) == (RUNNING, "another-runner")


async def test_stop_lets_short_jobs_finish_and_hands_long_ones_back(db: Database, settings: Settings) -> None:
    started: set[str] = set()

    async def handle(job: JobContext) -> None:
        started.add(job.payload["name"])
        await asyncio.sleep(job.payload["seconds"])

    first = make_runner(db, settings, {"test.sleep": handle})
    first.start()
    short = await add_job(db, "test.sleep", {"name": "short", "seconds": 0.5})
    long = await add_job(db, "test.sleep", {"name": "long", "seconds": 60})
    first.wake()

    async def both_started() -> bool:
        return started == {"short", "long"}

    await eventually(both_started)
    stopping = time.monotonic()
    await first.stop(grace=1.5)
    assert time.monotonic() - stopping < 5
    assert (await job_row(db, short)).state == SUCCEEDED
    row = await job_row(db, long)
    assert (row.state, row.attempts, row.lease_owner) == (QUEUED, 0, None)  # the interrupted attempt is not counted
    assert row.run_at <= utcnow()
    # Another runner takes it at once, without waiting for a lease to run out.
    started.clear()
    async with running(make_runner(db, settings, {"test.sleep": handle}), grace=0.1):

        async def long_started() -> bool:
            return "long" in started

        await eventually(long_started, within=3)


async def test_a_runner_claims_only_kinds_it_can_handle(db: Database, settings: Settings) -> None:
    async def handle(job: JobContext) -> None:
        return None

    async with running(make_runner(db, settings, {"test.mine": handle})):
        other = await add_job(db, "test.theirs")
        mine = await add_job(db, "test.mine")
        await until_state(db, mine, SUCCEEDED)
    row = await job_row(db, other)
    assert (row.state, row.attempts) == (QUEUED, 0)


async def test_wake_runs_a_job_without_waiting_for_the_poll(db: Database, tmp_path: Path) -> None:
    settings = job_settings(tmp_path, jobs_poll_seconds=30)

    async def handle(job: JobContext) -> None:
        return None

    runner = make_runner(db, settings, {"test.now": handle})
    async with running(runner):
        await asyncio.sleep(0.2)  # the first look found nothing; the next poll is 30 s away
        job_id = await add_job(db, "test.now")
        runner.wake()
        await until_state(db, job_id, SUCCEEDED, within=3)
