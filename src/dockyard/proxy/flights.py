"""Single-flight blob fetches: however many clients miss one blob at once, the upstream sends it once.

Across processes and replicas the fetcher is whoever takes the blob's row in ``proxy_fetches`` (an insert, or
the update of a lease that ran out); it renews the lease while it streams and deletes the row when done. The
others poll until the blob is stored (then serve it from storage) or the lease runs out or its holder is known
dead (``core.holders``: a process of this machine that exited) — then one of them takes over: a fetcher that died
leaves nothing half-stored, since the upload commits only after the digest checked.

Within the fetching process the bytes are teed: every client that asked before the first byte arrived gets them
as they come from upstream, while the same bytes stream into an upload object (``UploadService.monolithic``:
hashed, verified, committed atomically). The last chunk a client gets is held back until the blob verified, so
a client never gets a complete-looking body that failed its digest. Memory stays bounded: each client has a
queue of at most ``QUEUE_CHUNKS`` chunks; the fetch waits for a slow client up to ``SLOW_CLIENT_SECONDS`` and then
drops it (its response ends short; a retry is served from storage). A client that disconnects only leaves the
flight — the fetch goes on and completes the cache for everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update

from dockyard.core.digest import Digest
from dockyard.core.holders import is_dead, new_holder
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore, take_over
from dockyard.errors import NotFound, Unavailable
from dockyard.models import Blob, ProxyFetch
from dockyard.models.base import utcnow
from dockyard.proxy.manage import Upstream
from dockyard.proxy.upstream import UpstreamClient, UpstreamDown, UpstreamMissing
from dockyard.registry.uploads import ChunkSpec, UploadService

log = logging.getLogger("dockyard.proxy")

QUEUE_CHUNKS = 16  # of up to a MiB (proxy.blob_stream.CHUNK_BYTES)
SLOW_CLIENT_SECONDS = 30.0
POLL_SECONDS = 0.2


class _Dropped(Exception):
    """The client fell too far behind the upstream and was dropped from the flight."""


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    dropped: bool = False


@dataclass(eq=False)
class Flight:
    """One blob being fetched by this process."""

    digest: str
    name: str
    ready: asyncio.Future[int | None]  # the size (None: the upstream did not say), once the upstream answered
    done: asyncio.Future[None]  # stored (or the fetch failed)
    subscribers: list[_Subscriber] = field(default_factory=list)
    started: bool = False  # the first byte went out: later clients wait for the stored blob
    progress: asyncio.Event = field(default_factory=asyncio.Event)  # a client took a chunk or left


@dataclass(frozen=True, slots=True)
class Teed:
    """A blob streaming from upstream to this client while it is stored."""

    size: int | None
    chunks: AsyncIterator[bytes]


def _mark_retrieved(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _translate(exc: BaseException, digest: str) -> Exception:
    if isinstance(exc, UpstreamMissing):
        return NotFound("blob", "blob unknown to registry (and to the upstream)", {"digest": digest})
    if isinstance(exc, UpstreamDown):
        return Unavailable("upstream", f"the upstream registry cannot send the blob now: {exc}", {"digest": digest})
    if isinstance(exc, Exception):
        return exc
    return Unavailable("upstream", "the fetch of this blob was interrupted", {"digest": digest})


class BlobFlights:
    def __init__(self, db: Database, uploads: UploadService, client: UpstreamClient, lease_seconds: int) -> None:
        self.db = db
        self.uploads = uploads
        self.client = client
        self.lease = timedelta(seconds=lease_seconds)
        self.holder = new_holder()
        self._flights: dict[str, Flight] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def fetch(self, upstream: Upstream, name: str, repository: str, digest: str) -> Teed | None:
        """The blob streaming from upstream (this call's process fetches it), or None once it is stored (fetched
        by another flight; the caller links and serves it). Raises NotFound, Unavailable."""
        while True:
            flight = self._flights.get(digest)
            if flight is not None:
                if flight.name == name and not flight.started:
                    return await self._join(flight)
                with contextlib.suppress(Exception):
                    await asyncio.shield(flight.done)
                if await self.stored(digest):
                    return None
                if flight.done.done() and flight.done.exception() is not None:
                    raise _translate(flight.done.exception() or Exception(), digest)
                continue
            if await self._claim(digest):
                flight = self._start(upstream, name, repository, digest)
                return await self._join(flight)
            if await self._wait_elsewhere(digest):
                return None

    # -- this process's flights ----------------------------------------------------------------------------

    def _start(self, upstream: Upstream, name: str, repository: str, digest: str) -> Flight:
        loop = asyncio.get_running_loop()
        flight = Flight(digest, name, loop.create_future(), loop.create_future())
        flight.ready.add_done_callback(_mark_retrieved)
        flight.done.add_done_callback(_mark_retrieved)
        self._flights[digest] = flight
        task = asyncio.create_task(self._run(flight, upstream, repository), name=f"proxy.fetch {digest[:19]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return flight

    async def _join(self, flight: Flight) -> Teed:
        subscriber = _Subscriber()
        flight.subscribers.append(subscriber)
        try:
            size = await asyncio.shield(flight.ready)
        except BaseException as exc:
            self._leave(flight, subscriber)
            raise _translate(exc, flight.digest) from None
        return Teed(size, self._receive(flight, subscriber))

    def _leave(self, flight: Flight, subscriber: _Subscriber) -> None:
        with contextlib.suppress(ValueError):
            flight.subscribers.remove(subscriber)
        flight.progress.set()  # without an await: this runs in cancelled responses too

    async def _receive(self, flight: Flight, subscriber: _Subscriber) -> AsyncIterator[bytes]:
        held: bytes | None = None
        try:
            while True:
                chunk = await subscriber.queue.get()
                flight.progress.set()
                if chunk is None:
                    break
                if held is not None:
                    yield held
                held = chunk
            if subscriber.dropped:
                raise _Dropped(flight.digest)
            await asyncio.shield(flight.done)  # the digest verified and the blob is stored: send the last bytes
            if held is not None:
                yield held
        finally:
            self._leave(flight, subscriber)

    async def _broadcast(self, flight: Flight, chunk: bytes) -> None:
        """Queue ``chunk`` for every client, first waiting (up to ``SLOW_CLIENT_SECONDS``) for those whose queue
        is full; whoever is still full then is dropped."""
        flight.started = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SLOW_CLIENT_SECONDS
        while behind := [s for s in flight.subscribers if s.queue.qsize() >= QUEUE_CHUNKS]:
            remaining = deadline - loop.time()
            if remaining <= 0:
                for subscriber in behind:
                    subscriber.dropped = True
                    self._leave(flight, subscriber)
                    subscriber.queue.put_nowait(None)
                break
            flight.progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(flight.progress.wait(), remaining)
        for subscriber in flight.subscribers:
            subscriber.queue.put_nowait(chunk)

    async def _run(self, flight: Flight, upstream: Upstream, repository: str) -> None:
        renew = asyncio.create_task(self._renew(flight.digest))
        try:
            async with self.client.blob_stream(upstream, repository, flight.digest) as stream:
                flight.ready.set_result(stream.size)

                async def body() -> AsyncIterator[bytes]:
                    async for chunk in stream.chunks:
                        if chunk:
                            await self._broadcast(flight, chunk)
                            yield chunk

                spec = ChunkSpec(length=stream.size)
                await self.uploads.monolithic(flight.name, Digest.parse(flight.digest), body(), spec)
            flight.done.set_result(None)
        except BaseException as exc:
            if not isinstance(exc, UpstreamMissing):
                log.warning("proxy: fetching %s for %s failed: %s", flight.digest, flight.name, exc)
            if not flight.ready.done():
                flight.ready.set_exception(_translate(exc, flight.digest))
            flight.done.set_exception(_translate(exc, flight.digest))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._flights.pop(flight.digest, None)
            for subscriber in flight.subscribers:
                subscriber.queue.put_nowait(None)
            renew.cancel()
            await asyncio.shield(self._release(flight.digest))

    # -- the lease across processes ------------------------------------------------------------------------

    async def _claim(self, digest: str) -> bool:
        now = utcnow()
        async with self.db.write() as conn:
            values = {"digest": digest, "holder": self.holder, "lease_until": now + self.lease}
            if await insert_ignore(conn, ProxyFetch, values):
                return True
            lapsed, mine = ProxyFetch.lease_until < now, {"holder": self.holder, "lease_until": now + self.lease}
            key = ProxyFetch.digest == digest
            return await take_over(conn, ProxyFetch, key, ProxyFetch.holder, lapsed, mine, dead=is_dead)

    async def _renew(self, digest: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            with contextlib.suppress(Exception):
                async with self.db.write() as conn:
                    await conn.execute(
                        update(ProxyFetch)
                        .where(ProxyFetch.digest == digest, ProxyFetch.holder == self.holder)
                        .values(lease_until=utcnow() + self.lease)
                    )

    async def _release(self, digest: str) -> None:
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    delete(ProxyFetch).where(ProxyFetch.digest == digest, ProxyFetch.holder == self.holder)
                )
        except Exception as exc:  # the lease runs out by itself
            log.warning("proxy: could not release the fetch lease of %s: %s", digest, exc)

    async def stored(self, digest: str) -> bool:
        """Whether blob ``digest`` is stored (for any repository)."""
        async with self.db.read() as conn:
            return (await conn.execute(select(Blob.digest).where(Blob.digest == digest))).first() is not None

    async def _wait_elsewhere(self, digest: str) -> bool:
        """Wait while another process fetches ``digest``: True once it is stored, False if the lease ran out or
        was released without it (then this process tries to take it)."""
        while True:
            if await self.stored(digest):
                return True
            async with self.db.read() as conn:
                lease = (
                    await conn.execute(
                        select(ProxyFetch.lease_until, ProxyFetch.holder).where(ProxyFetch.digest == digest)
                    )
                ).first()
            if lease is None or lease.lease_until < utcnow() or is_dead(lease.holder):
                return await self.stored(digest)
            await asyncio.sleep(POLL_SECONDS)
