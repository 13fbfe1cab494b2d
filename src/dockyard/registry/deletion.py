"""Deleting repositories: the rows in the caller's transaction, the upload objects after it commits. The Hub's
repository delete and an account's deletion (every repository of its namespace) both go through here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.events.audit import record_audit
from dockyard.events.outbox import REPOSITORY_DELETED, record_event
from dockyard.models import Repository, Upload
from dockyard.storage.base import BlobStore, StorageError

log = logging.getLogger(__name__)

_BATCH = 500


@dataclass(frozen=True, slots=True)
class DoomedRepository:
    id: int
    name: str
    namespace: str


async def delete_repositories(
    conn: AsyncConnection, repositories: Sequence[DoomedRepository], *, actor: str | None, source_ip: str = ""
) -> list[str]:
    """Delete the repositories with their upload sessions inside ``conn``'s transaction (tags, manifests, blob
    links, grants and stars go by cascade), recording ``repository.deleted`` and the ``repo.delete`` audit entry
    for each. Blob bytes are left to garbage collection. Returns the ids of the upload sessions, whose objects
    the caller drops with ``drop_upload_objects`` once the transaction has committed."""
    uploads: list[str] = []
    for start in range(0, len(repositories), _BATCH):
        batch = repositories[start : start + _BATCH]
        names = [repo.name for repo in batch]  # sessions name their repository (it may not exist yet)
        uploads += (await conn.execute(select(Upload.id).where(Upload.repository.in_(names)))).scalars()
        await conn.execute(delete(Upload).where(Upload.repository.in_(names)))
        await conn.execute(delete(Repository).where(Repository.id.in_([repo.id for repo in batch])))
    for repo in repositories:
        await record_event(conn, REPOSITORY_DELETED, repository=repo.name, actor=actor)
        await record_audit(conn, repo.namespace, "repo.delete", actor=actor, target=repo.name, source_ip=source_ip)
    return uploads


async def namespace_repositories(conn: AsyncConnection, namespace: str) -> list[DoomedRepository]:
    """Every repository of ``namespace``, by name."""
    rows = await conn.execute(
        select(Repository.id, Repository.name, Repository.namespace)
        .where(Repository.namespace == namespace)
        .order_by(Repository.name)
    )
    return [DoomedRepository(row.id, row.name, row.namespace) for row in rows]


async def drop_upload_objects(store: BlobStore | None, upload_ids: Sequence[str]) -> None:
    """Delete the stored bytes of upload sessions whose rows are gone. Without a store (a caller that has none)
    the objects stay: orphans cost space, nothing else."""
    if store is None:
        if upload_ids:
            log.warning("%d upload objects of deleted repositories were left in storage", len(upload_ids))
        return
    for upload_id in upload_ids:
        try:
            await store.delete_upload(upload_id)
        except StorageError as exc:  # an orphaned upload object; harmless, only space
            log.warning("could not delete upload %s of a deleted repository: %s", upload_id, exc)
