"""Blobs as seen by a repository: existence checks, links (upload, mount), unlinking on DELETE, and the bytes:
``open`` says how to send a blob (redirect, local file or stream), ``read_small`` reads a small one whole and
``stream`` streams one to a reader on the server. The layers above reach blob storage only through here
(import-linter forbids them ``dockyard.storage``)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection

from dockyard.core.digest import Digest
from dockyard.core.names import namespace_of
from dockyard.db.engine import await_in_unit
from dockyard.db.statements import insert_ignore_sync
from dockyard.errors import Conflict, NotFound, QuotaExceeded
from dockyard.events.outbox import BLOB_DELETED, BLOB_MOUNTED, BLOB_UPLOADED, event_row, record_event, record_events
from dockyard.models import Blob, Manifest, ManifestReference, Repository, RepositoryBlob, Upload
from dockyard.models.base import utcnow
from dockyard.registry.context import RegistryContext
from dockyard.registry.quotas import count_link, record_refusal, record_warnings, release_links
from dockyard.registry.repositories import (
    ensure_repository_sync,
    find_repository,
    find_repository_sync,
    repository_for_write_sync,
)
from dockyard.storage.base import ObjectMissing, StorageError

log = logging.getLogger("dockyard.registry")

SMALL_BLOB_LIMIT = 4 * 1024 * 1024
"""The most ``read_small`` reads into memory (configs and signature payloads are a few KiB)."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    digest: str
    size: int
    # Set when the digest names a manifest of the repository rather than a blob (served from the DB).
    manifest_content: bytes | None = None
    media_type: str | None = None


@dataclass(frozen=True, slots=True)
class Redirect:
    """Send the client to ``url`` (a presigned object-store URL; it honours Range itself)."""

    url: str


@dataclass(frozen=True, slots=True)
class File:
    """Send the whole blob from the local file ``path`` (zero-copy where the server can); ``stat`` is its stat."""

    path: Path
    stat: os.stat_result


@dataclass(frozen=True, slots=True)
class Stream:
    """Send ``chunks``: its first chunk is already read, so content missing from storage was a ``NotFound``
    before any response started rather than a 200 cut off after its headers."""

    chunks: AsyncIterator[bytes]


def _content_missing(digest: str) -> NotFound:
    return NotFound("blob", "blob content is missing from storage", {"digest": digest})


async def _started(chunks: AsyncIterator[bytes], digest: str) -> AsyncIterator[bytes]:
    """``chunks`` with its first chunk already read (see ``Stream``)."""
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""
    except ObjectMissing:
        raise _content_missing(digest) from None

    async def rest() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return rest()


_REPOSITORY_ID = select(Repository.id).where(Repository.name == bindparam("name")).scalar_subquery()
_BLOB_IN_REPOSITORY = (
    select(Blob.size)
    .select_from(RepositoryBlob)
    .join(Blob, Blob.digest == RepositoryBlob.digest)
    .where(RepositoryBlob.repository_id == _REPOSITORY_ID, RepositoryBlob.digest == bindparam("digest"))
)
_LOCK_BLOB = select(Blob.digest).where(Blob.digest == bindparam("digest")).with_for_update(read=True)
_MANIFEST_AS_BLOB = select(Manifest.content, Manifest.media_type).where(
    Manifest.repository_id == _REPOSITORY_ID, Manifest.digest == bindparam("digest")
)


def hold_blob(conn: Connection, digest: str, size: int) -> None:
    """Make sure the global blob row exists and share-lock it until ``conn`` commits.

    Garbage collection deletes a blob's row and bytes only under an exclusive lock on that row, so while this
    transaction holds the share lock the blob cannot disappear underneath it. On SQLite the write transaction
    already excludes every other writer, so the row existing is enough.
    """
    for _ in range(3):
        if insert_ignore_sync(conn, Blob, {"digest": digest, "size": size, "created_at": utcnow()}):
            return  # inserted by this transaction: nobody else can delete it before it commits
        if conn.dialect.name == "sqlite":
            return
        if conn.execute(_LOCK_BLOB, {"digest": digest}).first() is not None:
            return
    raise Conflict("blob", "blob is being garbage-collected; retry", {"digest": digest})


def link_blob(conn: Connection, repo_id: int, digest: str) -> bool:
    """Link a (held) blob to the repository. Returns False if it was linked already."""
    return insert_ignore_sync(
        conn, RepositoryBlob, {"repository_id": repo_id, "digest": digest, "created_at": utcnow()}
    )


class BlobService:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def stat(self, name: str, digest: Digest) -> BlobInfo:
        """Size of a blob linked to ``name``; a manifest digest of the repository is served too, as in
        distribution. Raises NotFound("blob")."""
        key = str(digest)
        params = {"name": name, "digest": key}
        async with self.ctx.db.read() as conn:
            row = (await conn.execute(_BLOB_IN_REPOSITORY, params)).first()
            if row is not None:
                return BlobInfo(key, row[0])
            manifest = (await conn.execute(_MANIFEST_AS_BLOB, params)).first()
        if manifest is not None:
            return BlobInfo(key, len(manifest[0]), manifest[0], manifest[1])
        raise NotFound("blob", "blob unknown to registry", {"digest": key})

    async def open(self, info: BlobInfo, byte_range: tuple[int, int] | None = None) -> Redirect | File | Stream:
        """How to send a blob that ``stat`` found (not a manifest served as a blob): a redirect when the driver
        offers one (for a range too), else bytes ``[start, end)`` of ``byte_range`` or the whole blob, from a
        local file or streamed. Raises NotFound("blob") if its content is missing from storage."""
        store = self.ctx.store
        location = await store.locate(info.digest)
        if location.redirect_url is not None:
            return Redirect(location.redirect_url)
        if byte_range is not None:
            start, end = byte_range
            return Stream(await _started(store.read(info.digest, start, end), info.digest))
        if location.path is not None:
            try:
                stat_result = os.stat(location.path)
            except FileNotFoundError:
                raise _content_missing(info.digest) from None
            return File(location.path, stat_result)
        return Stream(await _started(store.read(info.digest), info.digest))

    async def stream(self, digest: str) -> AsyncIterator[bytes]:
        """The bytes of stored blob ``digest`` streamed from storage, whatever the driver (for readers on the
        server, such as the layer index; clients are sent what ``open`` says). The caller has checked that the
        digest is one it may read. Raises NotFound("blob") if its content is missing from storage, ``StorageError``
        if storage fails."""
        try:
            async for chunk in self.ctx.store.read(digest):
                yield chunk
        except ObjectMissing:
            raise _content_missing(digest) from None

    async def read_small(self, digest: str, size: int) -> bytes | None:
        """The ``size`` bytes of stored blob ``digest`` (an image config, a signature payload), or None if they
        are missing or storage fails (logged): callers treat such content as unknown. ``size`` is what the DB
        records, at most ``SMALL_BLOB_LIMIT``; the caller has checked that the digest is one it may read."""
        if not 0 <= size <= SMALL_BLOB_LIMIT:
            raise ValueError(f"read_small reads at most {SMALL_BLOB_LIMIT} bytes, not {size}")
        try:
            return b"".join([chunk async for chunk in self.ctx.store.read(digest, 0, size)])
        except (StorageError, OSError) as exc:
            log.info("could not read blob %s: %s", digest, exc)
            return None

    async def commit(
        self,
        name: str,
        upload_id: str,
        digest: str,
        size: int,
        actor: str | None = None,
        *,
        session: bool,
        source_ip: str = "",
        create: bool = True,
    ) -> None:
        """Turn a verified upload into a blob of ``name``: hold the blob row, move the bytes into place, link it,
        record the event and (``session``) drop the upload session — one transaction, so garbage collection
        can never delete the bytes between the move and the link. ``create=False``: only into an existing
        repository (``repository_for_write_sync``)."""
        store = self.ctx.store
        await self._land(
            name,
            digest,
            size,
            actor,
            lambda: await_in_unit(store.commit_upload(upload_id, digest, size)),
            upload_id if session else None,
            source_ip,
            create,
        )

    async def put_small(
        self,
        name: str,
        digest: str,
        data: bytes,
        actor: str | None = None,
        *,
        session: str | None = None,
        source_ip: str = "",
        create: bool = True,
    ) -> None:
        """Store a small verified blob of ``name`` in one storage write (``BlobStore.put_blob``), with the same
        transaction and effects as ``commit``; ``session`` is the upload session to drop, if any."""
        store = self.ctx.store
        place = lambda: await_in_unit(store.put_blob(digest, data))  # noqa: E731
        await self._land(name, digest, len(data), actor, place, session, source_ip, create)

    async def keep(self, data: bytes) -> str:
        """Store small ``data`` as a blob that no repository links and return its digest (``sha256:…``). Garbage
        collection keeps it only while a row names it (``builds.log_digest``: archived build logs); the caller
        writes that row after this returns, within ``gc_grace_seconds``."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        store = self.ctx.store

        def work(conn: Connection) -> None:
            hold_blob(conn, digest, len(data))
            await_in_unit(store.put_blob(digest, data))

        await self.ctx.db.run_unit(work, attempts=1)
        return digest

    async def _land(
        self,
        name: str,
        digest: str,
        size: int,
        actor: str | None,
        place: Callable[[], None],
        session: str | None,
        source_ip: str,
        create: bool = True,
    ) -> None:
        settings = self.ctx.settings

        def work(conn: Connection) -> None:
            repo_id = repository_for_write_sync(
                conn,
                name,
                actor,
                create=create,
                default_private=settings.default_private,
                open_server=settings.open,
                source_ip=source_ip,
            )
            hold_blob(conn, digest, size)
            # Linked and counted before the bytes move: a push refused by a quota leaves nothing in storage.
            linked = link_blob(conn, repo_id, digest)
            warnings = count_link(conn, namespace_of(name), digest, size) if linked else []
            place()
            if linked:
                record_events(
                    conn,
                    [event_row(BLOB_UPLOADED, repository=name, digest=digest, actor=actor, payload={"size": size})],
                )
                record_warnings(conn, warnings, name, actor)
            if session is not None:
                conn.execute(delete(Upload).where(Upload.id == session))

        try:
            await self.ctx.db.run_unit(work, attempts=1)  # the bytes move inside: never run it twice
        except QuotaExceeded as exc:
            await record_refusal(self.ctx.db, exc, repository=name, actor=actor)
            raise

    async def mount(
        self, name: str, digest: Digest, source: str, actor: str | None = None, *, source_ip: str = ""
    ) -> int | None:
        """Link a blob of ``source`` into ``name`` without copying. Returns its size, or None if ``source`` has
        no such blob (the caller then starts an ordinary upload)."""
        key = str(digest)
        settings = self.ctx.settings

        def work(conn: Connection) -> int | None:
            row = conn.execute(_BLOB_IN_REPOSITORY, {"name": source, "digest": key}).first()
            if row is None:
                return None
            repo_id = ensure_repository_sync(
                conn,
                name,
                actor,
                default_private=settings.default_private,
                open_server=settings.open,
                source_ip=source_ip,
            )
            hold_blob(conn, key, row[0])
            if link_blob(conn, repo_id, key):
                record_warnings(conn, count_link(conn, namespace_of(name), key, int(row[0])), name, actor)
                record_events(
                    conn,
                    [
                        event_row(
                            BLOB_MOUNTED,
                            repository=name,
                            digest=key,
                            actor=actor,
                            payload={"from": source, "size": row[0]},
                        )
                    ],
                )
            return int(row[0])

        try:
            return await self.ctx.db.run_unit(work)
        except QuotaExceeded as exc:
            await record_refusal(self.ctx.db, exc, repository=name, actor=actor)
            raise

    async def adopt(self, name: str, digest: str, *, referenced: bool) -> int | None:
        """Link stored blob ``digest`` into ``name`` without copying, for a pull-through cache that knows the
        upstream repository holds it. With ``referenced`` only if a manifest of ``name`` names it (so a cache never
        hands out a blob its repository was not shown). Returns the size, or None (not stored, not referenced)."""
        settings = self.ctx.settings

        def work(conn: Connection) -> int | None:
            size = conn.execute(select(Blob.size).where(Blob.digest == digest)).scalar_one_or_none()
            if size is None:
                return None
            repo_id = find_repository_sync(conn, name)
            if referenced:
                if repo_id is None:
                    return None
                named = conn.execute(
                    select(ManifestReference.digest)
                    .join(Manifest, Manifest.id == ManifestReference.manifest_id)
                    .where(Manifest.repository_id == repo_id, ManifestReference.digest == digest)
                    .limit(1)
                ).first()
                if named is None:
                    return None
            if repo_id is None:
                repo_id = ensure_repository_sync(
                    conn, name, None, default_private=settings.default_private, open_server=settings.open
                )
            hold_blob(conn, digest, int(size))
            link_blob(conn, repo_id, digest)
            return int(size)

        return await self.ctx.db.run_unit(work)

    async def unlink(self, name: str, digest: Digest, actor: str | None = None) -> None:
        """DELETE of a blob: the repository stops serving it; storage is reclaimed by garbage collection."""
        key = str(digest)
        async with self.ctx.db.write() as conn:
            repo_id = await find_repository(conn, name)
            if repo_id is None:
                raise NotFound("blob", "blob unknown to registry", {"digest": key})
            result = await conn.execute(
                delete(RepositoryBlob).where(RepositoryBlob.repository_id == repo_id, RepositoryBlob.digest == key)
            )
            if result.rowcount == 0:
                raise NotFound("blob", "blob unknown to registry", {"digest": key})
            await conn.run_sync(lambda sync: release_links(sync, [(namespace_of(name), key)]))
            await record_event(conn, BLOB_DELETED, repository=name, digest=key, actor=actor)
