"""Pull statistics: manifest GETs counted in memory on the hot path and written to the DB in batches.

``record`` is what a manifest GET calls: synchronous, O(1), no I/O, never raises. ``flush`` adds the counts to
``repositories.pull_count`` and sets ``last_pulled_at`` on repositories and tags, all in one write transaction;
``run`` flushes every ``settings.pull_stats_flush_seconds`` for the app's lifetime and once more when cancelled.
A failed flush keeps its counts for the next one. Memory is bounded: past ``max_keys`` distinct (repository,
tag) pairs waiting, pulls of new pairs are dropped (and counted in ``dropped``) until the next flush.

Counts are per process and eventually consistent: a crash loses at most one interval's pulls, which is the
price of keeping the DB off the pull path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.events.outbox import REPOSITORY_PULLED, record_event
from dockyard.models import Repository, Tag
from dockyard.registry.context import RegistryContext

log = logging.getLogger(__name__)

MAX_KEYS = 100_000

# Executed once per row (executemany); built once.
_COUNT_REPOSITORY = (
    update(Repository)
    .where(Repository.name == bindparam("b_name"))
    .values(pull_count=Repository.pull_count + bindparam("b_count"), last_pulled_at=bindparam("b_at"))
)
_TOUCH_TAG = (
    update(Tag)
    .where(
        Tag.repository_id == select(Repository.id).where(Repository.name == bindparam("b_name")).scalar_subquery(),
        Tag.name == bindparam("b_tag"),
    )
    .values(last_pulled_at=bindparam("b_at"))
)

Key = tuple[str, str | None]


class PullRecorder:
    """Counts pulls per (repository name, tag or None for a pull by digest). One per process."""

    def __init__(self, ctx: RegistryContext, *, max_keys: int = MAX_KEYS) -> None:
        self.ctx = ctx
        self.max_keys = max_keys
        self.dropped = 0
        self._pending: dict[Key, tuple[int, float]] = {}  # key → (count, time of the last pull)
        self._lock = asyncio.Lock()

    def record(self, name: str, tag: str | None) -> None:
        """Count one manifest GET (not HEAD) of ``name`` by ``tag`` (None: by digest)."""
        key = (name, tag)
        current = self._pending.get(key)
        if current is None:
            if len(self._pending) >= self.max_keys:
                self.dropped += 1
                return
            self._pending[key] = (1, time.time())
        else:
            self._pending[key] = (current[0] + 1, time.time())

    @property
    def pending(self) -> int:
        """Pulls counted and not yet written."""
        return sum(count for count, _ in self._pending.values())

    async def flush(self) -> int:
        """Write the counts so far in one transaction; return how many pulls were written. Never raises: on
        failure the counts are kept for the next flush. Cancelling the caller does not interrupt a write in
        progress (it completes in the background; the next flush waits for it)."""
        return await asyncio.shield(self._flush())

    async def _flush(self) -> int:
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                events = self.ctx.settings.pull_events
                window = self.ctx.settings.pull_stats_flush_seconds
                await self.ctx.db.run_write(lambda conn: _write(conn, batch, events=events, window=window))
            except Exception:
                log.warning("could not write pull statistics; keeping them for the next try", exc_info=True)
                self._restore(batch)
                return 0
            return sum(count for count, _ in batch.values())

    async def run(self) -> None:
        """Flush every ``pull_stats_flush_seconds`` until cancelled; then flush once more."""
        interval = self.ctx.settings.pull_stats_flush_seconds
        try:
            while True:
                await asyncio.sleep(interval)
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await self.flush()

    def _restore(self, batch: dict[Key, tuple[int, float]]) -> None:
        for key, (count, at) in batch.items():
            current = self._pending.get(key)
            if current is not None:
                self._pending[key] = (current[0] + count, max(current[1], at))
            elif len(self._pending) < self.max_keys:
                self._pending[key] = (count, at)
            else:
                self.dropped += count


async def _write(
    conn: AsyncConnection, batch: dict[Key, tuple[int, float]], *, events: bool = False, window: float = 0.0
) -> None:
    by_repository: dict[str, tuple[int, float]] = {}
    tags: list[dict[str, object]] = []
    for (name, tag), (count, at) in batch.items():
        total, last = by_repository.get(name, (0, 0.0))
        by_repository[name] = (total + count, max(last, at))
        if tag is not None:
            tags.append({"b_name": name, "b_tag": tag, "b_at": _utc(at)})
    # Rows in name order, as every writer locks them: replicas flushing at once never deadlock.
    repositories = [
        {"b_name": name, "b_count": count, "b_at": _utc(at)} for name, (count, at) in sorted(by_repository.items())
    ]
    await conn.execute(_COUNT_REPOSITORY, repositories)
    if tags:
        tags.sort(key=lambda row: (str(row["b_name"]), str(row["b_tag"])))
        await conn.execute(_TOUCH_TAG, tags)
    if events:
        # Opt-in "pull" webhook events, aggregated: one per repository and tag per flush, with the count.
        for (name, tag), (count, _) in sorted(batch.items(), key=lambda item: (item[0][0], item[0][1] or "")):
            await record_event(
                conn, REPOSITORY_PULLED, repository=name, tag=tag, payload={"count": count, "window_seconds": window}
            )


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
