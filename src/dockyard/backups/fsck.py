"""The consistency check of ``dockyard fsck``: whether everything the database says is pullable can be pulled.

Checked, in one consistent read of the database: every tag points at a stored manifest; every manifest's
references resolve — an index's children are manifests of the same repository, an image's config and layers are
rows of ``blobs``; and every blob a manifest references has its bytes in storage, of the size its row records.
Blobs no manifest references (waiting for garbage collection) are not checked: a pull never asks for them.

Works on either deployment (SQLite and a directory, PostgreSQL and S3): it reads through ``Database`` and the
``BlobStore`` the server uses, and writes nothing. Run after a restore, it says whether the backup was whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from dockyard.db.engine import Database
from dockyard.models import Blob, Manifest, ManifestReference, Repository, Tag
from dockyard.storage.base import BlobStore

STAT_CONCURRENCY = 16  # storage look-ups in flight at once (S3 round trips)


@dataclass(frozen=True)
class Problem:
    """One inconsistency: ``kind`` is ``tag_manifest_missing``, ``manifest_missing`` (an index's child),
    ``blob_unknown`` (no row), ``blob_missing`` (a row, no bytes) or ``blob_size`` (bytes of another size)."""

    kind: str
    repository: str
    subject: str  # the tag, or the manifest whose reference is broken
    digest: str  # what is missing
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "repository": self.repository,
            "subject": self.subject,
            "digest": self.digest,
            "detail": self.detail,
        }


@dataclass
class ConsistencyReport:
    tags: int = 0
    manifests: int = 0
    blobs: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "tags": self.tags,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "problems": [problem.as_dict() for problem in self.problems],
        }


async def check_consistency(
    db: Database, store: BlobStore, *, progress: Callable[[int, int], None] | None = None
) -> ConsistencyReport:
    """The inconsistencies between the database and storage (none: ``report.ok``). ``progress(done, total)`` is
    called as blobs are looked at in storage. Raises ``StorageError`` when storage cannot be read at all."""
    report = ConsistencyReport()
    child = aliased(Manifest)
    async with db.read(consistent=True) as conn:
        tags = (
            await conn.execute(
                select(Repository.name, Tag.name, Manifest.id)
                .select_from(Tag)
                .join(Repository, Repository.id == Tag.repository_id)
                .outerjoin(Manifest, Manifest.id == Tag.manifest_id)
            )
        ).all()
        children = (
            await conn.execute(
                select(Repository.name, Manifest.digest, ManifestReference.digest, child.id)
                .select_from(ManifestReference)
                .join(Manifest, Manifest.id == ManifestReference.manifest_id)
                .join(Repository, Repository.id == Manifest.repository_id)
                .outerjoin(
                    child,
                    (child.repository_id == Manifest.repository_id) & (child.digest == ManifestReference.digest),
                )
                .where(ManifestReference.kind == "manifest")
            )
        ).all()
        blob_refs = (
            await conn.execute(
                select(Repository.name, Manifest.digest, ManifestReference.digest, Blob.size)
                .select_from(ManifestReference)
                .join(Manifest, Manifest.id == ManifestReference.manifest_id)
                .join(Repository, Repository.id == Manifest.repository_id)
                .outerjoin(Blob, Blob.digest == ManifestReference.digest)
                .where(ManifestReference.kind == "blob")
            )
        ).all()
        report.manifests = int((await conn.execute(select(func.count()).select_from(Manifest))).scalar_one())
    report.tags = len(tags)
    for repository, tag, manifest_id in tags:
        if manifest_id is None:
            report.problems.append(Problem("tag_manifest_missing", repository, tag, "", "the tag's manifest row"))
    for repository, parent, digest, child_id in children:
        if child_id is None:
            report.problems.append(Problem("manifest_missing", repository, parent, digest, "an index's child"))
    expected: dict[str, int] = {}
    users: dict[str, tuple[str, str]] = {}
    for repository, manifest, digest, size in blob_refs:
        if size is None:
            report.problems.append(Problem("blob_unknown", repository, manifest, digest, "no row in blobs"))
            continue
        expected[digest] = size
        users.setdefault(digest, (repository, manifest))
    report.blobs = len(expected)
    for digest, stored in await _stat_all(store, sorted(expected), progress):
        repository, manifest = users[digest]
        if stored is None:
            report.problems.append(Problem("blob_missing", repository, manifest, digest, "not in storage"))
        elif stored != expected[digest]:
            detail = f"{stored} bytes stored, {expected[digest]} recorded"
            report.problems.append(Problem("blob_size", repository, manifest, digest, detail))
    return report


async def _stat_all(
    store: BlobStore, digests: Sequence[str], progress: Callable[[int, int], None] | None
) -> list[tuple[str, int | None]]:
    limit = asyncio.Semaphore(STAT_CONCURRENCY)
    done = 0

    async def stat(digest: str) -> tuple[str, int | None]:
        nonlocal done
        async with limit:
            size = await store.stat(digest)
        done += 1
        if progress is not None:
            progress(done, len(digests))
        return digest, size

    return list(await asyncio.gather(*(stat(digest) for digest in digests)))
