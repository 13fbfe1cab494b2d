"""Online garbage collection: unreferenced manifests, blob links and blobs, and abandoned upload sessions.

Runs while pushes continue. Every deletion follows the same protocol: find candidates, lock them exclusively
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction excludes all other writers), re-check in a
new statement that they are still unreferenced, delete. Writers that start using a row again share-lock it first
(``hold_blob``, the manifest PUT's reference check), so a row is either re-used or collected, never both. Blob
bytes are deleted inside the transaction that deletes the blob row, after the row is gone, so an upload of the
same digest (which holds the row first) cannot be half-collected.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, delete, exists, literal, not_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from dockyard.events.outbox import MANIFEST_DELETED, record_event
from dockyard.models import Blob, Build, Manifest, ManifestReference, Repository, RepositoryBlob, Tag
from dockyard.models.base import utcnow
from dockyard.registry.context import RegistryContext
from dockyard.registry.quotas import release_links
from dockyard.registry.uploads import expire_idle_uploads

log = logging.getLogger("dockyard.gc")
ACTOR = "dockyard-gc"
_MAX_ROUNDS = 32


@dataclass
class GCReport:
    dry_run: bool
    manifests: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest)
    blob_links: int = 0
    blobs: list[tuple[str, int]] = field(default_factory=list)  # (digest, size)
    uploads: list[str] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.blobs)

    def summary(self) -> dict[str, int | bool]:
        return {
            "dry_run": self.dry_run,
            "manifests": len(self.manifests),
            "blob_links": self.blob_links,
            "blobs": len(self.blobs),
            "bytes_freed": self.bytes_freed,
            "uploads": len(self.uploads),
        }


def _unreferenced_manifest(cutoff: datetime) -> object:
    parent = aliased(Manifest)
    subject = aliased(Manifest)
    referenced_by_index = exists().where(
        ManifestReference.kind == "manifest",
        ManifestReference.digest == Manifest.digest,
        ManifestReference.manifest_id == parent.id,
        parent.repository_id == Manifest.repository_id,
    )
    subject_present = exists().where(
        subject.repository_id == Manifest.repository_id, subject.digest == Manifest.subject_digest
    )
    return and_(
        Manifest.created_at < cutoff,
        not_(exists().where(Tag.manifest_id == Manifest.id)),
        not_(referenced_by_index),
        or_(Manifest.subject_digest.is_(None), not_(subject_present)),
    )


def _unreferenced_link(cutoff: datetime) -> object:
    used = exists().where(
        ManifestReference.kind == "blob",
        ManifestReference.digest == RepositoryBlob.digest,
        ManifestReference.manifest_id == Manifest.id,
        Manifest.repository_id == RepositoryBlob.repository_id,
    )
    return and_(RepositoryBlob.created_at < cutoff, not_(used))


def _unlinked_blob(cutoff: datetime) -> object:
    # A blob no repository links may still be kept by a row that names it: an archived build log.
    return and_(
        Blob.created_at < cutoff,
        not_(exists().where(RepositoryBlob.digest == Blob.digest)),
        not_(exists().where(Build.log_digest == Blob.digest)),
    )


Key = tuple[Any, ...]


def _in_window(columns: tuple[Any, ...], after: Key | None, upper: Key | None) -> list[Any]:
    """Restrict to keys in ``(after, upper]`` (either end open when None)."""
    key = tuple_(*columns)
    conditions = []
    if after is not None:
        conditions.append(key > tuple_(*[literal(v) for v in after]))
        if len(columns) > 1:  # the leading column alone: lets the planner see how narrow the range is
            conditions.append(columns[0] >= after[0])
    if upper is not None:
        conditions.append(key <= tuple_(*[literal(v) for v in upper]))
        if len(columns) > 1:
            conditions.append(columns[0] <= upper[0])
    return conditions


MANIFEST_KEY = (Manifest.id,)
LINK_KEY = (RepositoryBlob.repository_id, RepositoryBlob.digest)
BLOB_KEY = (Blob.digest,)


def window_upper(columns: tuple[Any, ...], after: Key | None, size: int) -> Select[Any]:
    """The last key of the next window of ``size`` rows after ``after`` (an index-only range scan)."""
    return select(*columns).where(*_in_window(columns, after, None)).order_by(*columns).offset(size - 1).limit(1)


def manifest_candidates(
    cutoff: datetime, after: Key | None = None, upper: Key | None = None
) -> Select[int, str, str, str]:
    """Untagged manifests no index of their repository lists and whose subject (if any) is gone."""
    return (
        select(Manifest.id, Manifest.digest, Manifest.media_type, Repository.name)
        .join(Repository, Repository.id == Manifest.repository_id)
        .where(_unreferenced_manifest(cutoff), *_in_window(MANIFEST_KEY, after, upper))  # type: ignore[arg-type]
        .order_by(Manifest.id)
    )


def link_candidates(cutoff: datetime, after: Key | None = None, upper: Key | None = None) -> Select[int, str]:
    """Blob links no manifest of their repository references."""
    return select(RepositoryBlob.repository_id, RepositoryBlob.digest).where(
        _unreferenced_link(cutoff),  # type: ignore[arg-type]
        *_in_window(LINK_KEY, after, upper),
    )


def blob_candidates(cutoff: datetime, after: Key | None = None, upper: Key | None = None) -> Select[str, int]:
    """Blobs no repository links."""
    return select(Blob.digest, Blob.size).where(
        _unlinked_blob(cutoff),  # type: ignore[arg-type]
        *_in_window(BLOB_KEY, after, upper),
    )


Phase = Callable[[datetime, "Key | None", "Key | None", GCReport], Awaitable[int]]


GCProgress = Callable[[str | None], None]
"""Told a phase's name when it starts, and None after each scanned window."""


def _silent(phase: str | None) -> None:
    """No progress display."""


class GarbageCollector:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def run(
        self, *, dry_run: bool = False, grace: timedelta | None = None, progress: GCProgress | None = None
    ) -> GCReport:
        """One collection. ``grace``: content younger than this is kept (default: the configured grace);
        ``progress`` is told each phase and each scanned window (for a terminal's progress display)."""
        settings = self.ctx.settings
        grace = timedelta(seconds=settings.gc_grace_seconds) if grace is None else grace
        cutoff = utcnow() - grace
        report = GCReport(dry_run)
        tell = progress or _silent
        tell("uploads")
        await self._expire_uploads(report)
        if settings.gc_untagged_manifests:
            # Removing an index can orphan its children: sweep again while a sweep finds something.
            for _ in range(_MAX_ROUNDS):
                tell("manifests")
                if not await self._sweep(MANIFEST_KEY, self._manifest_batch, cutoff, report, tell) or dry_run:
                    break
        tell("blob links")
        await self._sweep(LINK_KEY, self._link_batch, cutoff, report, tell)
        tell("blobs")
        await self._sweep(BLOB_KEY, self._blob_batch, cutoff, report, tell)
        log.info("garbage collection finished: %s", report.summary())
        return report

    async def _sweep(
        self, key: tuple[Any, ...], batch: Phase, cutoff: datetime, report: GCReport, tell: GCProgress = _silent
    ) -> int:
        """Walk a table in key order, one window of ``gc_scan_window`` rows at a time, so that every statement
        is bounded (an index range) however large the table is; ``batch`` collects within each window."""
        found = 0
        after: Key | None = None
        while True:
            async with self.ctx.db.read() as conn:
                row = (await conn.execute(window_upper(key, after, self.ctx.settings.gc_scan_window))).first()
            upper = tuple(row) if row is not None else None
            found += await batch(cutoff, after, upper, report)
            tell(None)
            if upper is None:
                return found
            after = upper

    async def _manifest_batch(self, cutoff: datetime, after: Key | None, upper: Key | None, report: GCReport) -> int:
        query = manifest_candidates(cutoff, after, upper)
        if report.dry_run:
            async with self.ctx.db.read(consistent=True) as conn:
                rows = (await conn.execute(query)).all()
            report.manifests.extend((name, digest) for _, digest, _, name in rows)
            return len(rows)
        async with self.ctx.db.write() as conn:
            locked = [r[0] for r in (await conn.execute(query.with_for_update(skip_locked=True, of=Manifest))).all()]
            if not locked:
                return 0
            rows = (await conn.execute(query.where(Manifest.id.in_(locked)))).all()  # re-check, fresh snapshot
            ids = [r[0] for r in rows]
            if ids:
                await conn.execute(delete(ManifestReference).where(ManifestReference.manifest_id.in_(ids)))
                await conn.execute(delete(Manifest).where(Manifest.id.in_(ids)))
            for _, digest, media_type, name in rows:
                await record_event(
                    conn,
                    MANIFEST_DELETED,
                    repository=name,
                    digest=digest,
                    media_type=media_type,
                    actor=ACTOR,
                    payload={"reason": "garbage-collected"},
                )
        report.manifests.extend((name, digest) for _, digest, _, name in rows)
        return len(rows)

    async def _link_batch(self, cutoff: datetime, after: Key | None, upper: Key | None, report: GCReport) -> int:
        query = link_candidates(cutoff, after, upper)
        if report.dry_run:
            async with self.ctx.db.read(consistent=True) as conn:
                rows = (await conn.execute(query)).all()
            report.blob_links += len(rows)
            return len(rows)
        async with self.ctx.db.write() as conn:
            locked = (await conn.execute(query.with_for_update(skip_locked=True))).all()
            if not locked:
                return 0
            deleted = 0
            released: list[tuple[int, str]] = []
            for repo_id, digest in locked:
                result = await conn.execute(
                    delete(RepositoryBlob).where(
                        RepositoryBlob.repository_id == repo_id,
                        RepositoryBlob.digest == digest,
                        _unreferenced_link(cutoff),  # type: ignore[arg-type]
                    )
                )
                deleted += result.rowcount
                if result.rowcount:
                    released.append((repo_id, digest))
            await self._release(conn, released)
        report.blob_links += deleted
        return deleted

    @staticmethod
    async def _release(conn: AsyncConnection, released: list[tuple[int, str]]) -> None:
        """The namespaces' usage, in the transaction that removed the links."""
        if not released:
            return
        ids = sorted({repo_id for repo_id, _ in released})
        rows = (await conn.execute(select(Repository.id, Repository.namespace).where(Repository.id.in_(ids)))).all()
        namespaces = {int(row[0]): str(row[1]) for row in rows}
        links = [(namespaces[repo_id], digest) for repo_id, digest in released if repo_id in namespaces]
        await conn.run_sync(lambda sync: release_links(sync, links))

    async def _blob_batch(self, cutoff: datetime, after: Key | None, upper: Key | None, report: GCReport) -> int:
        query = blob_candidates(cutoff, after, upper)
        if report.dry_run:
            async with self.ctx.db.read(consistent=True) as conn:
                rows = (await conn.execute(query)).all()
            report.blobs.extend((d, s) for d, s in rows)
            return len(rows)
        freed: list[tuple[str, int]] = []
        async with self.ctx.db.write() as conn:
            locked = (await conn.execute(query.with_for_update(skip_locked=True))).all()
            for digest, size in locked:
                if await self._delete_blob(conn, digest, cutoff):
                    freed.append((digest, size))
        report.blobs.extend(freed)
        return len(locked)

    async def _delete_blob(self, conn: AsyncConnection, digest: str, cutoff: datetime) -> bool:
        result = await conn.execute(delete(Blob).where(Blob.digest == digest, _unlinked_blob(cutoff)))  # type: ignore[arg-type]
        if result.rowcount != 1:
            return False
        # The row is gone but still locked by this transaction: no upload of this digest can commit its bytes
        # until we are done, so deleting the bytes now cannot destroy a concurrent push.
        await self.ctx.store.delete(digest)
        return True

    async def _expire_uploads(self, report: GCReport) -> None:
        report.uploads.extend(await expire_idle_uploads(self.ctx, dry_run=report.dry_run))
