"""The per-layer file index: built once per layer digest, in one streaming pass, by whoever needs it first.

``LayerIndexer.ensure(digest)`` returns when the layer's index is ready. The first caller claims the layer (an
``INSERT … ON CONFLICT DO NOTHING`` of its ``layer_indexes`` row, state ``building``), streams the blob through
``tarstream.scan`` in a worker thread and writes the entries in batches of ``batch`` rows, each batch its own
short transaction (an SQLite writer never holds the lock for a whole layer); the last transaction marks the row
``ready``. Everyone else — another request, another process, another replica — waits for that row. Callers in one
process share one build (an in-process future per digest).

Concurrency: the claim row's ``builder`` and ``heartbeat_at`` are a lease. The builder renews it while it works
(every batch, and on a timer while it hashes a large file); a builder that stopped renewing for ``stale_after``
seconds is presumed dead — at once if it ran on this machine and its process is gone (``core.holders``) — and
the next caller takes the claim over with a conditional UPDATE. Entry rows are keyed
by (layer digest, seq) and are the same whoever computes them, and are inserted with ``ON CONFLICT DO NOTHING``:
a builder that lost its claim and a new one writing the same rows never duplicate one. Every write of a builder
checks it still holds the claim, so only the holder marks the index ready or failed.

A blob that is not a readable tar (corrupt gzip or zstd, a tar bomb past ``MAX_ENTRIES``) is recorded as
``failed`` with the reason — content-addressed, so it will never read better — and ``ensure`` raises
``Invalid("layer")``. A storage failure releases the claim instead, so a later call tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.holders import is_dead, new_holder
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore, insert_or_nothing, take_over
from dockyard.errors import Invalid, NotFound
from dockyard.layers.bridge import through_thread
from dockyard.layers.tarstream import LayerFormatError, ScanStats, TarEntry, batches, scan
from dockyard.models import LayerFile, LayerIndex
from dockyard.models.base import utcnow
from dockyard.registry.blobs import BlobService

log = logging.getLogger("dockyard.layers")

BUILDING, READY, FAILED = "building", "ready", "failed"
BATCH = 1000
STALE_AFTER = 60.0
POLL_SECONDS = 0.2
MAX_ERROR = 1000


@dataclass(frozen=True, slots=True)
class IndexState:
    """A layer's ``layer_indexes`` row."""

    digest: str
    state: str
    entries: int
    skipped: int
    error: str | None
    finished_at: datetime | None


class _LostClaim(Exception):
    """Another builder took the claim over (this one was presumed dead)."""


def _failed(state: IndexState) -> Invalid:
    return Invalid("layer", f"the layer cannot be read: {state.error}", {"digest": state.digest})


def entry_values(digest: str, entry: TarEntry) -> dict[str, Any]:
    return {
        "layer_digest": digest,
        "seq": entry.seq,
        "member": entry.member,
        "path": entry.path,
        "dir": entry.dir,
        "kind": str(entry.kind),
        "size": entry.size,
        "mode": entry.mode,
        "uid": entry.uid,
        "gid": entry.gid,
        "uname": entry.uname,
        "gname": entry.gname,
        "mtime": entry.mtime,
        "link": entry.link,
        "sha256": entry.sha256,
        "offset": entry.offset,
    }


class LayerIndexer:
    """Builds and finds layer indexes. One per process (it coalesces the builds of its callers); safe for
    concurrent use, and across processes through the DB."""

    def __init__(
        self,
        db: Database,
        blobs: BlobService,
        *,
        batch: int = BATCH,
        stale_after: float = STALE_AFTER,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.batch = batch
        self.stale_after = stale_after
        self.poll_seconds = poll_seconds
        self._builds: dict[str, asyncio.Future[IndexState]] = {}

    async def state(self, digest: str) -> IndexState | None:
        """The layer's index row, or None if no one has started indexing it."""
        async with self.db.read() as conn:
            return await self._state(conn, digest)

    async def ensure(self, digest: str) -> IndexState:
        """Return once the index of layer ``digest`` (a stored blob the caller may read) is ready, building it
        if no one else is. Raises ``Invalid("layer")`` if the blob is not a readable tar layer, ``NotFound("blob")``
        if it is missing, ``StorageError`` if storage fails."""
        known = await self.state(digest)
        if known is not None and known.state == READY:
            return known
        if known is not None and known.state == FAILED:
            raise _failed(known)
        build = self._builds.get(digest)
        if build is None:
            build = asyncio.ensure_future(self._ensure(digest, known))
            self._builds[digest] = build
            build.add_done_callback(lambda done: self._forget(digest, done))
        # Shielded: a caller that goes away (a closed connection) does not abandon the build for the others.
        return await asyncio.shield(build)

    def _forget(self, digest: str, done: asyncio.Future[IndexState]) -> None:
        self._builds.pop(digest, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter has seen it already

    async def _ensure(self, digest: str, known: IndexState | None) -> IndexState:
        """Build or wait for the index; ``known`` is the row as ``ensure`` just read it (read again each round)."""
        token = new_holder()
        while True:
            if known is None:
                claimed = await self._claim(digest, token)
            elif known.state == READY:
                return known
            elif known.state == FAILED:
                raise _failed(known)
            else:
                claimed = await self._take_over(digest, token)
            if claimed:
                try:
                    return await self._build(digest, token)
                except _LostClaim:
                    log.info("layer %s: another builder took over the index", digest)
            await asyncio.sleep(self.poll_seconds)
            known = await self.state(digest)

    async def _claim(self, digest: str, token: str) -> bool:
        now = utcnow()
        values = {"digest": digest, "state": BUILDING, "builder": token, "heartbeat_at": now, "created_at": now}
        try:
            async with self.db.write() as conn:
                return await insert_ignore(conn, LayerIndex, {**values, "entries": 0, "skipped": 0})
        except IntegrityError:  # no blobs row: the blob is gone (collected)
            raise NotFound("blob", "blob unknown to registry", {"digest": digest}) from None

    async def _take_over(self, digest: str, token: str) -> bool:
        """Claim a build whose builder stopped renewing its lease, or is known dead (``core.holders``)."""
        building = and_(LayerIndex.digest == digest, LayerIndex.state == BUILDING)
        lapsed = LayerIndex.heartbeat_at < utcnow() - timedelta(seconds=self.stale_after)
        async with self.db.write() as conn:
            # the heartbeat is stamped once the write lock is held: stamped before a wait, it could be stale at once
            values = {"builder": token, "heartbeat_at": utcnow()}
            return await take_over(conn, LayerIndex, building, LayerIndex.builder, lapsed, values, dead=is_dead)

    async def _renew(self, conn: AsyncConnection, digest: str, token: str, **values: Any) -> None:
        result = await conn.execute(
            update(LayerIndex)
            .where(LayerIndex.digest == digest, LayerIndex.builder == token, LayerIndex.state == BUILDING)
            .values(heartbeat_at=utcnow(), **values)
        )
        if result.rowcount != 1:
            raise _LostClaim()

    async def _heartbeat(self, digest: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.stale_after / 3)
            async with self.db.write() as conn:
                await self._renew(conn, digest, token)

    async def _build(self, digest: str, token: str) -> IndexState:
        stats = ScanStats()
        beating = asyncio.create_task(self._heartbeat(digest, token), name="layers.heartbeat")
        try:
            await self._write_entries(digest, token, stats, beating)
        except LayerFormatError as exc:
            return await self._finish(digest, token, stats, error=str(exc)[:MAX_ERROR])
        except _LostClaim:
            raise
        except IntegrityError:  # the blob (and with it the claim) was garbage-collected while we read it
            with contextlib.suppress(Exception):
                await self._release(digest, token)
            raise NotFound("blob", "blob unknown to registry", {"digest": digest}) from None
        except BaseException:
            with contextlib.suppress(Exception):
                await self._release(digest, token)
            raise
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError, _LostClaim):
                await beating
        return await self._finish(digest, token, stats, error=None)

    async def _write_entries(self, digest: str, token: str, stats: ScanStats, beating: asyncio.Task[None]) -> None:
        chunks = self.blobs.stream(digest)
        stream = through_thread(chunks, lambda raw: batches(scan(raw, stats), self.batch))
        async with contextlib.aclosing(stream) as entry_batches:
            async for batch in entry_batches:
                if beating.done() and not beating.cancelled() and beating.exception() is not None:
                    raise _LostClaim()
                await self._insert(digest, token, batch)

    async def _insert(self, digest: str, token: str, batch: Sequence[TarEntry]) -> None:
        async with self.db.write() as conn:
            await self._renew(conn, digest, token)
            await conn.execute(insert_or_nothing(conn, LayerFile), [entry_values(digest, e) for e in batch])

    async def _finish(self, digest: str, token: str, stats: ScanStats, *, error: str | None) -> IndexState:
        # the row as this update leaves it (the claim is ours: no one else writes it meanwhile)
        state = IndexState(digest, READY if error is None else FAILED, stats.entries, stats.skipped, error, utcnow())
        async with self.db.write() as conn:
            if error is not None:  # partial entries of an unreadable layer are useless
                await conn.execute(delete(LayerFile).where(LayerFile.layer_digest == digest))
            await self._renew(
                conn,
                digest,
                token,
                state=state.state,
                entries=state.entries,
                skipped=state.skipped,
                escapes=stats.escapes,
                escape_sample=stats.escape_sample,
                error=error,
                finished_at=state.finished_at,
            )
        if error is not None:
            log.info("layer %s cannot be indexed: %s", digest, error)
            raise _failed(state)
        return state

    async def _release(self, digest: str, token: str) -> None:
        """Give the claim up (its entries with it) so that a later call starts again."""
        async with self.db.write() as conn:
            await conn.execute(delete(LayerIndex).where(LayerIndex.digest == digest, LayerIndex.builder == token))

    @staticmethod
    async def _state(conn: AsyncConnection, digest: str) -> IndexState | None:
        row = (
            await conn.execute(
                select(
                    LayerIndex.state, LayerIndex.entries, LayerIndex.skipped, LayerIndex.error, LayerIndex.finished_at
                ).where(LayerIndex.digest == digest)
            )
        ).first()
        if row is None:
            return None
        return IndexState(digest, row.state, row.entries, row.skipped, row.error, row.finished_at)
