"""Blob upload sessions: start, append (chunked or streamed), status, complete with digest check, cancel.

Bytes stream from the request through a hasher and into the storage driver in batches; hashing and writing run
in worker threads side by side while the next batch is received. The DB records how many bytes are durably
stored; a request's partial tail is discarded. The running hash lives in this process's memory, keyed by
(upload, offset); after a restart, or when another replica took the previous chunk, it is recomputed from the
stored bytes — correct first, fast in the common case. A request writing to a session holds a lease on it (others
get 409); the lease names the request's process (``core.holders``), so after a crash a retry on this machine
takes it at once instead of waiting for it to run out (``upload_lease_seconds``).

Sessions are a resource a client can hold without sending anything, so they are bounded: at most
``upload_sessions_per_account`` open sessions per account and ``upload_sessions_per_repository`` per repository
(``RateLimited`` beyond), a session idle for ``upload_expiry_seconds`` no longer counts and is removed by
:meth:`UploadService.expire`, and opening one creates no repository — the first blob that lands does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from dockyard.core.digest import Digest, Hasher, check_algorithm, new_hasher
from dockyard.core.holders import is_dead, new_short_holder
from dockyard.core.names import namespace_of
from dockyard.errors import Conflict, Invalid, NotFound, RangeNotSatisfiable, RateLimited
from dockyard.models import Account, Upload
from dockyard.models.base import utcnow
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.registry.namespaces import may_create_in_sync
from dockyard.storage.base import StorageError, UploadMissing, UploadWriter

log = logging.getLogger("dockyard.registry")
_HASHER_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class UploadState:
    id: str
    name: str
    size: int
    algorithm: str


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """What the request says about its body: where it starts (Content-Range) and how long it is."""

    start: int | None = None
    length: int | None = None


SMALL_BLOB_PUT = 1024 * 1024
"""A blob whose request declares at most this many bytes (and starts an upload) is received whole and stored with
one storage write (``BlobService.put_small``: one PUT on S3) instead of through upload objects."""


def _longer_than_declared(length: int) -> Invalid:
    return Invalid("size", "body is longer than declared", {"declared": length})


def _not_as_declared(received: int, length: int) -> Invalid:
    return Invalid(
        "size", f"body has {received} bytes, {length} were declared", {"declared": length, "received": received}
    )


def _digest_mismatch(digest: Digest, actual: str) -> Invalid:
    return Invalid(
        "digest",
        "provided digest did not match uploaded content",
        {"expected": str(digest), "actual": f"{digest.algorithm}:{actual}"},
    )


def _is_small(offset: int, spec: ChunkSpec) -> bool:
    return offset == 0 and spec.start in (None, 0) and spec.length is not None and spec.length <= SMALL_BLOB_PUT


async def _receive_small(body: AsyncIterator[bytes], length: int, digest: Digest) -> bytes:
    """The whole body of a small blob (``length`` declared, at most ``SMALL_BLOB_PUT``), checked against ``digest``."""
    chunks: list[bytes] = []
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > length:
            raise _longer_than_declared(length)
        chunks.append(chunk)
    if received != length:
        raise _not_as_declared(received, length)
    data = b"".join(chunks)
    hasher = new_hasher(digest.algorithm)
    await asyncio.to_thread(hasher.update, data)
    actual = hasher.hexdigest()
    if actual != digest.hex:
        raise _digest_mismatch(digest, actual)
    return data


def _upload_unknown(upload_id: str) -> NotFound:
    return NotFound("upload", "blob upload unknown to registry", {"upload": upload_id[:64]})


def _update_hash(hasher: Hasher, chunks: Sequence[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)


class _HasherCache:
    """In-process running hashes, valid only for the exact (upload, offset, algorithm) they were left at."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[int, str, Hasher]] = OrderedDict()

    def take(self, upload_id: str, offset: int, algorithm: str) -> Hasher | None:
        item = self._items.pop(upload_id, None)
        if item is not None and item[0] == offset and item[1] == algorithm:
            return item[2]
        return None

    def put(self, upload_id: str, offset: int, algorithm: str, hasher: Hasher) -> None:
        self._items[upload_id] = (offset, algorithm, hasher)
        while len(self._items) > _HASHER_CACHE_SIZE:
            self._items.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        self._items.pop(upload_id, None)


async def expire_idle_uploads(ctx: RegistryContext, *, dry_run: bool = False) -> list[str]:
    """Remove sessions idle for ``upload_expiry_seconds`` and not being written to, with their objects. Returns
    their ids (with ``dry_run``: the ids that would be removed, removing nothing)."""
    now = utcnow()
    expired_before = now - timedelta(seconds=ctx.settings.upload_expiry_seconds)
    query = select(Upload.id).where(
        Upload.updated_at < expired_before, or_(Upload.lease_until.is_(None), Upload.lease_until < now)
    )
    if dry_run:
        async with ctx.db.read() as conn:
            return list((await conn.execute(query)).scalars())
    async with ctx.db.write() as conn:
        ids = list((await conn.execute(query.with_for_update(skip_locked=True))).scalars())
        if ids:
            await conn.execute(delete(Upload).where(Upload.id.in_(ids)))
    for upload_id in ids:
        await ctx.store.delete_upload(upload_id)
    return ids


# The statements of the push path, built once (see ``dockyard.db.statements.prepared``).
_INSERT_UPLOAD = insert(Upload)
_LOCK_ACCOUNT = select(Account.id).where(Account.id == bindparam("account_id")).with_for_update()
_ACCOUNT_UPLOADS = select(func.count()).where(
    Upload.account_id == bindparam("account_id"), Upload.updated_at >= bindparam("since")
)
_REPOSITORY_UPLOADS = select(func.count()).where(
    Upload.repository == bindparam("name"), Upload.updated_at >= bindparam("since")
)
_THIS_UPLOAD = (Upload.id == bindparam("upload_id"), Upload.repository == bindparam("name"))
_CLAIM = (
    update(Upload)
    .where(*_THIS_UPLOAD, or_(Upload.lease_until.is_(None), Upload.lease_until < bindparam("now")))
    .values(lease_token=bindparam("token"), lease_until=bindparam("until"))
    .returning(Upload.size, Upload.algorithm)
)
_TAKE_OVER = (
    update(Upload)
    .where(*_THIS_UPLOAD, Upload.lease_token == bindparam("dead"))
    .values(lease_token=bindparam("token"), lease_until=bindparam("until"))
    .returning(Upload.size, Upload.algorithm)
)
_UPLOAD_EXISTS = select(Upload.id, Upload.lease_token).where(*_THIS_UPLOAD)
_LEASED = (Upload.id == bindparam("upload_id"), Upload.lease_token == bindparam("token"))
_RELEASE = update(Upload).where(*_LEASED).values(lease_token=None, lease_until=None)
_RELEASE_AT = (
    update(Upload)
    .where(*_LEASED)
    .values(lease_token=None, lease_until=None, size=bindparam("p_size"), updated_at=bindparam("now"))
)


class UploadService:
    def __init__(self, ctx: RegistryContext, blobs: BlobService) -> None:
        self.ctx = ctx
        self.blobs = blobs
        self._hashers = _HasherCache()
        self._lease = timedelta(seconds=ctx.settings.upload_lease_seconds)

    # -- sessions -------------------------------------------------------------------------------------------

    async def start(
        self, name: str, algorithm: str = "sha256", actor: str | None = None, account_id: int | None = None
    ) -> UploadState:
        """Open a session on ``name`` for the account ``account_id`` (None: an open server's caller). Raises
        RateLimited when the account or the repository has as many open sessions as it may."""
        check_algorithm(algorithm)
        upload_id = uuid.uuid4().hex
        now = utcnow()
        settings = self.ctx.settings

        def work(conn: Connection) -> None:
            if not settings.open:
                # Refused before any byte arrives; the repository itself is created when content lands.
                may_create_in_sync(conn, namespace_of(name), actor)
            self._check_capacity(conn, name, account_id, now)
            conn.execute(
                _INSERT_UPLOAD,
                {
                    "id": upload_id,
                    "repository": name,
                    "account_id": account_id,
                    "algorithm": algorithm,
                    "size": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )

        await self.ctx.db.run_unit(work)
        try:
            await self.ctx.store.create_upload(upload_id)
        except BaseException:
            async with self.ctx.db.write() as conn:
                await conn.execute(delete(Upload).where(Upload.id == upload_id))
            raise
        return UploadState(upload_id, name, 0, algorithm)

    def _check_capacity(self, conn: Connection, name: str, account_id: int | None, now: datetime) -> None:
        settings = self.ctx.settings
        since = now - timedelta(seconds=settings.upload_expiry_seconds)
        if account_id is not None:
            # Serialises one account's concurrent starts on PostgreSQL (SQLite's write transaction already does).
            conn.execute(_LOCK_ACCOUNT, {"account_id": account_id})
            held = conn.scalar(_ACCOUNT_UPLOADS, {"account_id": account_id, "since": since})
            if (held or 0) >= settings.upload_sessions_per_account:
                raise RateLimited(
                    "upload",
                    "too many open upload sessions for this account; finish or cancel some first",
                    {"limit": settings.upload_sessions_per_account},
                    retry_after=60,
                )
        held = conn.scalar(_REPOSITORY_UPLOADS, {"name": name, "since": since})
        if (held or 0) >= settings.upload_sessions_per_repository:
            raise RateLimited(
                "upload",
                "too many open upload sessions for this repository; finish or cancel some first",
                {"limit": settings.upload_sessions_per_repository},
                retry_after=60,
            )

    async def expire(self) -> list[str]:
        """Remove idle sessions (see :func:`expire_idle_uploads`); returns their ids."""
        ids = await expire_idle_uploads(self.ctx)
        for upload_id in ids:
            self._hashers.drop(upload_id)
        return ids

    async def status(self, name: str, upload_id: str) -> UploadState:
        async with self.ctx.db.read() as conn:
            row = (
                await conn.execute(
                    select(Upload.size, Upload.algorithm).where(Upload.id == upload_id, Upload.repository == name)
                )
            ).first()
        if row is None:
            raise _upload_unknown(upload_id)
        return UploadState(upload_id, name, row[0], row[1])

    async def cancel(self, name: str, upload_id: str) -> None:
        await self.status(name, upload_id)
        async with self.ctx.db.write() as conn:
            await conn.execute(delete(Upload).where(Upload.id == upload_id))
        self._hashers.drop(upload_id)
        await self.ctx.store.delete_upload(upload_id)

    # -- leases ---------------------------------------------------------------------------------------------

    async def _claim(self, name: str, upload_id: str) -> tuple[UploadState, str]:
        token = new_short_holder()  # a request of a process that dies is not waited for (core.holders)
        now = utcnow()
        lease = self._lease

        def work(conn: Connection) -> UploadState:
            # One statement takes the lease and reads the size of the row version it took it on. A SELECT before
            # the UPDATE could read a size that a writer releasing meanwhile has moved on (on PostgreSQL the
            # UPDATE re-checks its WHERE on the newest version, the earlier SELECT does not), and two writers
            # would both append at that stale offset.
            params = {"upload_id": upload_id, "name": name, "now": now, "token": token, "until": now + lease}
            row = conn.execute(_CLAIM, params).first()
            if row is not None:
                return UploadState(upload_id, name, row[0], row[1])
            exists = conn.execute(_UPLOAD_EXISTS, params).first()
            if exists is None:
                raise _upload_unknown(upload_id)
            if is_dead(exists.lease_token):  # its request's process is gone (a crash, kill -9): taken at once
                row = conn.execute(_TAKE_OVER, {**params, "dead": exists.lease_token}).first()
                if row is not None:
                    return UploadState(upload_id, name, row[0], row[1])
            raise Conflict("upload", "another request is writing to this upload", {"upload": upload_id})

        return await self.ctx.db.run_unit(work), token

    async def _renew(self, upload_id: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._lease.total_seconds() / 6)
            with contextlib.suppress(Exception):
                async with self.ctx.db.write() as conn:
                    await conn.execute(
                        update(Upload)
                        .where(Upload.id == upload_id, Upload.lease_token == token)
                        .values(lease_until=utcnow() + self._lease)
                    )

    async def _release(self, upload_id: str, token: str, size: int | None) -> None:
        params: dict[str, object] = {"upload_id": upload_id, "token": token}
        if size is not None:
            params.update(p_size=size, now=utcnow())
        statement = _RELEASE if size is None else _RELEASE_AT
        await self.ctx.db.run_unit(lambda conn: conn.execute(statement, params))

    # -- streaming ------------------------------------------------------------------------------------------

    async def _hasher_at(self, upload_id: str, offset: int, algorithm: str) -> Hasher:
        hasher = self._hashers.take(upload_id, offset, algorithm)
        if hasher is not None:
            return hasher
        hasher = new_hasher(algorithm)
        if offset:
            async for chunk in self.ctx.store.read_upload(upload_id, 0, offset):
                await asyncio.to_thread(hasher.update, chunk)
        return hasher

    async def _stream(
        self, upload_id: str, offset: int, hasher: Hasher, body: AsyncIterator[bytes], spec: ChunkSpec
    ) -> int:
        """Append the request body at ``offset``; return the number of bytes durably written."""
        if spec.start is not None and spec.start != offset:
            raise RangeNotSatisfiable(
                "range", f"chunk starts at {spec.start}, upload is at {offset}", current_end=offset
            )
        batch_limit = self.ctx.settings.upload_write_batch_bytes
        writer: UploadWriter = await self.ctx.store.open_upload(upload_id, offset)
        pending: asyncio.Future[tuple[None, None]] | None = None
        received = 0
        try:
            batch: list[bytes] = []
            batch_bytes = 0
            async for chunk in body:
                if not chunk:
                    continue
                received += len(chunk)
                if spec.length is not None and received > spec.length:
                    raise _longer_than_declared(spec.length)
                batch.append(chunk)
                batch_bytes += len(chunk)
                if batch_bytes >= batch_limit:
                    if pending is not None:
                        await pending
                    pending = asyncio.gather(writer.write(batch), asyncio.to_thread(_update_hash, hasher, batch))
                    batch, batch_bytes = [], 0
            if pending is not None:
                await pending
                pending = None
            if batch:
                await asyncio.gather(writer.write(batch), asyncio.to_thread(_update_hash, hasher, batch))
            if spec.length is not None and received != spec.length:
                raise _not_as_declared(received, spec.length)
            await writer.close()
        except BaseException:
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await pending
            await writer.abort()
            raise
        return received

    async def append(self, name: str, upload_id: str, body: AsyncIterator[bytes], spec: ChunkSpec) -> UploadState:
        """PATCH: append a chunk (Content-Range) or a stream. Raises RangeNotSatisfiable for out-of-order."""
        state, token = await self._claim(name, upload_id)
        renew = asyncio.create_task(self._renew(upload_id, token))
        new_size: int | None = None
        try:
            hasher = await self._hasher_at(upload_id, state.size, state.algorithm)
            try:
                received = await self._stream(upload_id, state.size, hasher, body, spec)
            except UploadMissing as exc:
                raise _upload_unknown(upload_id) from exc
            new_size = state.size + received
            self._hashers.put(upload_id, new_size, state.algorithm, hasher)
        finally:
            renew.cancel()
            await asyncio.shield(self._release(upload_id, token, new_size))
        return UploadState(upload_id, name, new_size, state.algorithm)

    async def complete(
        self,
        name: str,
        upload_id: str,
        digest: Digest,
        body: AsyncIterator[bytes],
        spec: ChunkSpec,
        actor: str | None = None,
        source_ip: str = "",
    ) -> int:
        """Closing PUT: append the optional last chunk, verify the digest, commit the blob. Returns its size."""
        state, token = await self._claim(name, upload_id)
        renew = asyncio.create_task(self._renew(upload_id, token))
        size = state.size
        try:
            if _is_small(state.size, spec) and spec.length is not None:
                data = await _receive_small(body, spec.length, digest)
                await self.blobs.put_small(name, str(digest), data, actor, session=upload_id, source_ip=source_ip)
                self._hashers.drop(upload_id)
                try:
                    await self.ctx.store.delete_upload(upload_id)
                except StorageError as exc:  # committed; the empty upload object is only clutter
                    log.warning("could not delete the upload object of %s: %s", upload_id, exc)
                return len(data)
            algorithm = state.algorithm
            hasher = await self._hasher_at(upload_id, state.size, algorithm)
            try:
                size += await self._stream(upload_id, state.size, hasher, body, spec)
            except UploadMissing as exc:
                raise _upload_unknown(upload_id) from exc
            if digest.algorithm != algorithm:
                # The session hashed with another algorithm: recompute from the stored bytes.
                hasher = await self._hasher_at(upload_id, size, digest.algorithm)
            actual = hasher.hexdigest()
            if actual != digest.hex:
                self._hashers.drop(upload_id)
                raise _digest_mismatch(digest, actual)
            await self.blobs.commit(name, upload_id, str(digest), size, actor, session=True, source_ip=source_ip)
            self._hashers.drop(upload_id)
            return size
        except BaseException:
            renew.cancel()
            await asyncio.shield(self._release(upload_id, token, size))
            raise
        finally:
            renew.cancel()

    async def monolithic(
        self,
        name: str,
        digest: Digest,
        body: AsyncIterator[bytes],
        spec: ChunkSpec,
        actor: str | None = None,
        source_ip: str = "",
        *,
        create: bool = True,
    ) -> int:
        """Single-POST upload (``POST …/uploads/?digest=``): no session row, the upload object is private (a small
        blob has none: it is stored with one write). ``create=False``: only into an existing repository."""
        if _is_small(0, spec) and spec.length is not None:
            data = await _receive_small(body, spec.length, digest)
            await self.blobs.put_small(name, str(digest), data, actor, source_ip=source_ip, create=create)
            return len(data)
        upload_id = uuid.uuid4().hex
        await self.ctx.store.create_upload(upload_id)
        committed = False
        try:
            hasher = new_hasher(digest.algorithm)
            size = await self._stream(upload_id, 0, hasher, body, spec)
            actual = hasher.hexdigest()
            if actual != digest.hex:
                raise _digest_mismatch(digest, actual)
            await self.blobs.commit(
                name, upload_id, str(digest), size, actor, session=False, source_ip=source_ip, create=create
            )
            committed = True
            return size
        finally:
            if not committed:
                await asyncio.shield(self.ctx.store.delete_upload(upload_id))

    async def put_bytes(self, name: str, data: bytes, actor: str | None = None, *, create: bool = True) -> Digest:
        """Store ``data``, small and already in memory (a signature payload, an SBOM, a sample image's layer), as
        a blob of ``name`` exactly as a monolithic upload of it would; returns its digest."""
        digest = Digest.of(data)

        async def body() -> AsyncIterator[bytes]:
            yield data

        await self.monolithic(name, digest, body(), ChunkSpec(None, len(data)), actor, create=create)
        return digest
