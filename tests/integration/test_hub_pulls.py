"""PullRecorder: counts in memory, one write per flush (repository pull counts, last pulled times of repositories
and tags), counts kept across a failed flush, bounded memory, the periodic loop and its final flush."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dockyard.core.paging import PageRequest
from dockyard.models import Repository
from dockyard.repos.pulls import PullRecorder
from tests.support.hub_services import HubEnv, hub_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[HubEnv]:
    async with hub_env(tmp_path, pull_stats_flush_seconds=0.05) as e:
        yield e


async def pull_count(env: HubEnv, repo: str) -> int:
    async with env.db.read() as conn:
        return int((await conn.execute(select(Repository.pull_count).where(Repository.name == repo))).scalar_one())


async def test_flush_writes_counts_and_times(env: HubEnv) -> None:
    owner = await env.user()
    repo = f"{owner.name}/app"
    await env.push_image(repo, "v1")
    await env.push_image(repo, "v2")
    recorder = PullRecorder(env.ctx)
    assert await recorder.flush() == 0  # nothing to do

    for _ in range(3):
        recorder.record(repo, "v1")
    recorder.record(repo, None)  # by digest
    recorder.record("nobody/unknown", "x")  # a repository that vanished: ignored by the write
    assert recorder.pending == 5
    assert await recorder.flush() == 5
    assert recorder.pending == 0
    assert await pull_count(env, repo) == 4

    view = await env.repos.get(owner, owner.name, "app")
    assert view.pull_count == 4
    v1 = await env.tags.get_tag(owner, owner.name, "app", "v1")
    assert v1.tag_last_pulled is not None
    assert v1.images[0].last_pulled == v1.tag_last_pulled
    assert (await env.tags.get_tag(owner, owner.name, "app", "v2")).tag_last_pulled is None

    recorder.record(repo, "v2")
    await recorder.flush()
    assert await pull_count(env, repo) == 5
    assert (await env.tags.get_tag(owner, owner.name, "app", "v2")).tag_last_pulled is not None
    ordered = await env.repos.list_namespace(owner, owner.name, PageRequest(1, 10), ordering="-pull_count")
    assert ordered.items[0].pull_count == 5


async def test_failed_flush_keeps_counts(env: HubEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = f"{(await env.user()).name}/app"
    await env.push_image(repo)
    recorder = PullRecorder(env.ctx)
    recorder.record(repo, "latest")
    recorder.record(repo, "latest")

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("database unavailable")

    monkeypatch.setattr(env.db, "run_write", broken)
    assert await recorder.flush() == 0  # no exception reaches the caller
    recorder.record(repo, "latest")  # counted while the DB is down
    assert recorder.pending == 3
    monkeypatch.undo()
    assert await recorder.flush() == 3
    assert await pull_count(env, repo) == 3


async def test_memory_is_bounded_and_record_is_cheap(env: HubEnv) -> None:
    recorder = PullRecorder(env.ctx, max_keys=2)
    recorder.record("a/one", "x")
    recorder.record("a/two", "x")
    recorder.record("a/three", "x")  # a third key: dropped
    recorder.record("a/one", "x")  # known keys still count
    assert (recorder.pending, recorder.dropped) == (3, 1)

    fast = PullRecorder(env.ctx)
    started = time.perf_counter()
    for i in range(100_000):
        fast.record(f"ns/repo{i % 1000}", "latest")
    assert time.perf_counter() - started < 1.0
    assert fast.pending == 100_000


async def test_run_flushes_periodically_and_on_cancel(env: HubEnv) -> None:
    repo = f"{(await env.user()).name}/loop"
    await env.push_image(repo)
    recorder = PullRecorder(env.ctx)
    task = asyncio.create_task(recorder.run())
    recorder.record(repo, "latest")
    for _ in range(100):
        await asyncio.sleep(0.02)
        if await pull_count(env, repo) == 1:
            break
    assert await pull_count(env, repo) == 1
    # What is recorded just before shutdown is written by the final flush.
    recorder.record(repo, "latest")
    recorder.record(repo, None)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pull_count(env, repo) == 3
    assert recorder.pending == 0
