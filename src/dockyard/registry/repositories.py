"""The repository service: the one place a ``repositories`` row is created, changed or deleted, whichever door the
change came through (a push or a grant creating it, the Hub API, the CLI, an account's deletion).

Each operation runs in the caller's write transaction (the caller has authorized it) and has one set of side
effects: create inserts the row with ``created_at`` = ``updated_at``, records ``repository.created`` and audits
``repo.create`` ``{"is_private"}``; update moves ``updated_at`` and audits ``repo.update`` ``{"fields"}`` (texts)
and ``repo.change_privacy`` ``{"is_private"}``; delete drops the row with its upload sessions (tags, manifests, blob
links, grants and stars go by cascade), records ``repository.deleted`` and audits ``repo.delete``. Counters moved
by activity (stars, pulls, the last push) are not lifecycle changes and are kept by their own services.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Insert, bindparam, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.names import namespace_of
from dockyard.db.statements import dialect_insert_for, prepared
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.events.audit import audit_row, record_audit, record_audits
from dockyard.events.outbox import REPOSITORY_CREATED, REPOSITORY_DELETED, event_row, record_event, record_events
from dockyard.models import Account, Build, BuildLink, Repository, RepositoryBlob, Upload
from dockyard.models.base import utcnow
from dockyard.registry.namespaces import claim_namespace_sync
from dockyard.registry.quotas import count_repository, release_links
from dockyard.storage.base import BlobStore, StorageError

log = logging.getLogger(__name__)

MAX_DESCRIPTION = 100
MAX_FULL_DESCRIPTION = 25_000
_BATCH = 500
_FIND = select(Repository.id).where(Repository.name == bindparam("name"))


@dataclass(frozen=True, slots=True)
class DoomedRepository:
    id: int
    name: str
    namespace: str


async def find_repository(conn: AsyncConnection, name: str) -> int | None:
    return (await conn.execute(_FIND, {"name": name})).scalar_one_or_none()


def find_repository_sync(conn: Connection, name: str) -> int | None:
    return conn.execute(_FIND, {"name": name}).scalar_one_or_none()


async def require_repository(conn: AsyncConnection, name: str) -> int:
    repo_id = await find_repository(conn, name)
    if repo_id is None:
        raise NotFound("repository", "repository name not known to registry", {"name": name})
    return repo_id


def default_visibility(conn: Connection, namespace: str, server_default: bool) -> bool:
    """Whether a new repository in ``namespace`` starts private: the namespace's setting, else the server's."""
    own = conn.execute(_DEFAULT_PRIVATE, {"name": namespace}).scalar_one_or_none()
    return server_default if own is None else bool(own)


def check_texts(description: str | None, full_description: str | None) -> None:
    """``Invalid("request")`` if a description is longer than the Hub allows."""
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise Invalid("request", f"description must be at most {MAX_DESCRIPTION} characters", {"field": "description"})
    if full_description is not None and len(full_description) > MAX_FULL_DESCRIPTION:
        raise Invalid(
            "request",
            f"full_description must be at most {MAX_FULL_DESCRIPTION} characters",
            {"field": "full_description"},
        )


_DEFAULT_PRIVATE = select(Account.default_private).where(Account.name == bindparam("name"))


def _insert_repository_statement(dialect: str) -> Insert:
    return (
        dialect_insert_for(dialect, Repository)
        .on_conflict_do_nothing()
        .values(
            name=bindparam("p_name"),
            namespace=bindparam("p_namespace"),
            is_private=bindparam("p_private"),
            description=bindparam("p_description"),
            full_description=bindparam("p_full_description"),
            created_at=bindparam("p_now"),
            updated_at=bindparam("p_now"),
        )
        .returning(Repository.id)
    )


def _insert_repository(
    conn: Connection,
    name: str,
    *,
    actor: str | None,
    is_private: bool | None,
    default_private: bool,
    description: str,
    full_description: str,
    source_ip: str,
) -> int | None:
    """Insert the row with its event and audit entry; None (and nothing written) if the name exists, also when
    another writer inserted it a moment ago (``INSERT … ON CONFLICT DO NOTHING``: the caller's transaction goes
    on)."""
    check_texts(description, full_description)
    namespace = namespace_of(name)
    private = is_private if is_private is not None else default_visibility(conn, namespace, default_private)
    now = utcnow()
    repo_id: int | None = conn.execute(
        prepared(conn, _insert_repository_statement),
        {
            "p_name": name,
            "p_namespace": namespace,
            "p_private": private,
            "p_description": description,
            "p_full_description": full_description,
            "p_now": now,
        },
    ).scalar_one_or_none()
    if repo_id is None:
        return None
    count_repository(conn, namespace)  # raises QuotaExceeded past the namespace's repository limit
    record_events(conn, [event_row(REPOSITORY_CREATED, repository=name, actor=actor)])
    record_audits(
        conn,
        [
            audit_row(
                namespace, "repo.create", actor=actor, target=name, source_ip=source_ip, data={"is_private": private}
            )
        ],
    )
    return repo_id


def create_repository_sync(
    conn: Connection,
    name: str,
    *,
    actor: str | None,
    is_private: bool | None,
    default_private: bool,
    description: str = "",
    full_description: str = "",
    source_ip: str = "",
) -> int:
    """Insert repository ``name`` (a valid registry name) and return its id. Visibility is ``is_private`` if
    given, else the namespace's default, else ``default_private`` (the server's). Raises ``Invalid("request")``
    for too long descriptions and ``Conflict("repository")`` if the name exists (also when another writer
    inserted it a moment ago; the caller's transaction goes on)."""
    repo_id = _insert_repository(
        conn,
        name,
        actor=actor,
        is_private=is_private,
        default_private=default_private,
        description=description,
        full_description=full_description,
        source_ip=source_ip,
    )
    if repo_id is None:
        raise Conflict("repository", "repository already exists", {"name": name})
    return repo_id


async def create_repository(
    conn: AsyncConnection,
    name: str,
    *,
    actor: str | None,
    is_private: bool | None,
    default_private: bool,
    description: str = "",
    full_description: str = "",
    source_ip: str = "",
) -> int:
    """``create_repository_sync`` in an async unit of work."""
    return await conn.run_sync(
        lambda sync: create_repository_sync(
            sync,
            name,
            actor=actor,
            is_private=is_private,
            default_private=default_private,
            description=description,
            full_description=full_description,
            source_ip=source_ip,
        )
    )


def ensure_repository_sync(
    conn: Connection,
    name: str,
    actor: str | None = None,
    *,
    default_private: bool = True,
    open_server: bool,
    source_ip: str = "",
) -> int:
    """Return the repository's id, creating it (as ``create_repository_sync``) inside ``conn``'s write
    transaction: the first push to a name, or a grant naming a repository not pushed yet. On a secure server (not
    ``open_server``) the namespace must be an account's, or the actor a site administrator, whose push creates it
    as an organization (``claim_namespace_sync``); else ``Denied("account")``."""
    repo_id = find_repository_sync(conn, name)
    if repo_id is not None:
        return repo_id
    if not open_server:
        claim_namespace_sync(conn, namespace_of(name), actor)
    created = _insert_repository(
        conn,
        name,
        actor=actor,
        is_private=None,
        default_private=default_private,
        description="",
        full_description="",
        source_ip=source_ip,
    )
    if created is not None:
        return created
    found = find_repository_sync(conn, name)  # another replica created it between our look-up and insert
    if found is None:
        raise NotFound("repository", "repository name not known to registry", {"name": name})
    return found


def repository_for_write_sync(
    conn: Connection,
    name: str,
    actor: str | None,
    *,
    create: bool,
    default_private: bool,
    open_server: bool,
    source_ip: str = "",
) -> int:
    """The id of the repository a write goes to: created by the write (``ensure_repository_sync``) when ``create``,
    as a client's push does; else it must exist (``NotFound("repository")``) — what the server writes of its own
    accord (an SBOM, a signature, a provenance attached in the background) never brings back a repository that
    was deleted meanwhile."""
    if create:
        return ensure_repository_sync(
            conn, name, actor, default_private=default_private, open_server=open_server, source_ip=source_ip
        )
    found = find_repository_sync(conn, name)
    if found is None:
        raise NotFound("repository", "repository name not known to registry", {"name": name})
    return found


async def ensure_repository(
    conn: AsyncConnection,
    name: str,
    actor: str | None = None,
    *,
    default_private: bool = True,
    open_server: bool,
    source_ip: str = "",
) -> int:
    """``ensure_repository_sync`` in an async unit of work."""
    return await conn.run_sync(
        lambda sync: ensure_repository_sync(
            sync, name, actor, default_private=default_private, open_server=open_server, source_ip=source_ip
        )
    )


async def update_repository(
    conn: AsyncConnection,
    repo_id: int,
    *,
    actor: str | None,
    description: str | None = None,
    full_description: str | None = None,
    is_private: bool | None = None,
    source_ip: str = "",
) -> bool:
    """Change what is given and differs from the row; returns whether anything changed. Every change moves
    ``updated_at``. Raises ``Invalid("request")`` for too long descriptions, ``NotFound("repository")`` if the
    row is gone."""
    check_texts(description, full_description)
    row = (
        await conn.execute(
            select(
                Repository.name,
                Repository.namespace,
                Repository.is_private,
                Repository.description,
                Repository.full_description,
            ).where(Repository.id == repo_id)
        )
    ).first()
    if row is None:
        raise NotFound("repository", "repository not found", {"id": repo_id})
    texts = {
        key: value
        for key, value in (("description", description), ("full_description", full_description))
        if value is not None and value != (getattr(row, key) or "")
    }
    privacy = is_private is not None and is_private != bool(row.is_private)
    if not texts and not privacy:
        return False
    values: dict[str, object] = {**texts, "updated_at": utcnow()}
    if privacy:
        values["is_private"] = is_private
    await conn.execute(update(Repository).where(Repository.id == repo_id).values(**values))
    if texts:
        await record_audit(
            conn,
            row.namespace,
            "repo.update",
            actor=actor,
            target=row.name,
            source_ip=source_ip,
            data={"fields": sorted(texts)},
        )
    if privacy:
        await record_audit(
            conn,
            row.namespace,
            "repo.change_privacy",
            actor=actor,
            target=row.name,
            source_ip=source_ip,
            data={"is_private": is_private},
        )
    return True


async def delete_repositories(
    conn: AsyncConnection, repositories: Sequence[DoomedRepository], *, actor: str | None, source_ip: str = ""
) -> list[str]:
    """Delete the repositories with their upload sessions, build links and builds inside ``conn``'s transaction
    (tags, manifests, blob links, grants and stars go by cascade), recording ``repository.deleted`` and the
    ``repo.delete`` audit entry for each. Blob bytes are left to garbage collection. Returns the ids of the upload
    sessions, whose objects the caller drops with ``drop_upload_objects`` once the transaction has committed."""
    uploads: list[str] = []
    for start in range(0, len(repositories), _BATCH):
        batch = repositories[start : start + _BATCH]
        names = [repo.name for repo in batch]  # sessions name their repository (it may not exist yet)
        uploads += (await conn.execute(select(Upload.id).where(Upload.repository.in_(names)))).scalars()
        await conn.execute(delete(Upload).where(Upload.repository.in_(names)))
        ids = [repo.id for repo in batch]
        links = (
            await conn.execute(
                select(Repository.namespace, RepositoryBlob.digest)
                .join(RepositoryBlob, RepositoryBlob.repository_id == Repository.id)
                .where(Repository.id.in_(ids))
            )
        ).all()
        released = [(str(row[0]), str(row[1])) for row in links]
        # automated builds: the link (its rules by cascade) and the history (log lines by cascade; archived logs
        # are then left to garbage collection), so a repository made again under the name inherits none of them
        await conn.execute(delete(BuildLink).where(BuildLink.repository.in_(names)))
        await conn.execute(delete(Build).where(Build.repository.in_(names)))
        await conn.execute(delete(Repository).where(Repository.id.in_(ids)))
        await conn.run_sync(release_links, released)
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
