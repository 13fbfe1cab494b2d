"""Factories for job-runner tests: a migrated database of the test backend, runner settings with short timings,
job rows read back, and waiting for a condition without fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from dockyard.db.engine import Database
from dockyard.jobs.handlers import Handler
from dockyard.jobs.queue import enqueue
from dockyard.jobs.runner import JobRunner
from dockyard.migrations.runner import upgrade
from dockyard.models import Job
from dockyard.settings import Settings
from tests.support import backend
from tests.support.schema import seed_sqlite


def database_url(tmp_path: Path, *, migrated: bool = False) -> str:
    """A new database on the test backend (a PostgreSQL database of its own, or a SQLite file): empty, or
    ``migrated`` to the head revision (a copy of a template, ``tests/support/schema.py``)."""
    if backend.is_scaleout():
        from tests.support.postgres import shared_cluster

        return shared_cluster().create_database("jobs", migrated=migrated)
    if migrated:
        seed_sqlite(tmp_path / "dockyard.db")
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


async def migrated_database(url: str) -> Database:
    db = Database(url)
    await upgrade(db)
    return db


@asynccontextmanager
async def new_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own on the test backend, migrated, closed after the block."""
    database = await migrated_database(database_url(tmp_path, migrated=True))
    try:
        yield database
    finally:
        await database.close()


def job_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Runner settings with timings short enough for tests (override any of them)."""
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "jobs_poll_seconds": 0.05,
        "jobs_lease_seconds": 30,
        "jobs_concurrency": 4,
        "jobs_backoff_base_seconds": 0.01,
        "jobs_backoff_cap_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


def make_runner(
    db: Database, settings: Settings, handlers: Mapping[str, Handler], *, owner: str | None = None
) -> JobRunner:
    return JobRunner(db, settings, handlers, owner=owner)


@asynccontextmanager
async def running(*runners: JobRunner, grace: float = 5.0) -> AsyncIterator[None]:
    """Run the runners in the background for the block; stop them (``grace`` seconds each) after it."""
    for runner in runners:
        runner.start()
    try:
        yield
    finally:
        await asyncio.gather(*(runner.stop(grace) for runner in runners))


async def add_job(db: Database, kind: str, payload: dict[str, Any] | None = None, **options: Any) -> int:
    async with db.write() as conn:
        job_id = await enqueue(conn, kind, payload or {}, **options)
    assert job_id is not None
    return job_id


async def job_row(db: Database, job_id: int) -> Job:
    """The job's row as a detached ``Job`` (columns only)."""
    async with db.read() as conn:
        row = (await conn.execute(select(Job.__table__).where(Job.id == job_id))).mappings().one()
    return Job(**dict(row))


async def jobs_in(db: Database, *states: str) -> list[int]:
    async with db.read() as conn:
        statement = select(Job.id).order_by(Job.id)
        if states:
            statement = statement.where(Job.state.in_(states))
        return [int(job_id) for job_id in (await conn.execute(statement)).scalars()]


async def set_columns(db: Database, job_id: int, **values: Any) -> None:
    """Rewrite a job's columns directly (age a row instead of sleeping)."""
    async with db.write() as conn:
        await conn.execute(update(Job).where(Job.id == job_id).values(**values))


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, within: float = 15.0, interval: float = 0.02, what: str = ""
) -> None:
    """Wait until ``condition()`` is true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what or condition}")
        await asyncio.sleep(interval)


async def until_state(db: Database, job_id: int, *states: str, within: float = 15.0) -> Job:
    async def reached() -> bool:
        return (await job_row(db, job_id)).state in states

    await eventually(reached, within=within, what=f"job {job_id} to be {'/'.join(states)}")
    return await job_row(db, job_id)
