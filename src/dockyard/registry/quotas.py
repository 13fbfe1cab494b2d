"""Namespace quotas: storage usage kept in the transaction of every blob link and unlink, the hard limits a new
link and a new repository are checked against, the soft-threshold warning, and the recount.

Storage counts the *distinct* blobs a namespace's repositories link: ``namespace_blobs`` holds how many of its
repositories link each digest, and ``namespace_usage.storage_bytes`` moves only when a digest's count goes from 0
to 1 or back. A new link costs one upsert on the reference row; a link new to the namespace one more, the upsert
of the usage row, which also returns the limits, so the check needs no statement of its own. On PostgreSQL that
upsert locks the namespace's usage row until the transaction commits, so pushes of new content into one
namespace pass the check one after the other: concurrent pushes cannot together exceed the limit. Locks are
always taken reference row first, usage row second. Repositories are counted from the ``repositories`` table,
and only when the namespace has a repository limit (``count_repository``). A refused change raises
``QuotaExceeded`` and rolls back; ``record_refusal`` then writes ``quota.exceeded`` in a transaction of its own.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import BigInteger, Insert, bindparam, case, delete, false, func, insert, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.db.statements import dialect_insert, dialect_insert_for, prepared
from dockyard.errors import Invalid, QuotaExceeded
from dockyard.events.outbox import QUOTA_EXCEEDED, QUOTA_WARNING, event_row, record_event, record_events
from dockyard.models import Account, Blob, NamespaceBlob, NamespaceUsage, Repository, RepositoryBlob

log = logging.getLogger("dockyard.quotas")

STORAGE = "storage"
REPOSITORIES = "repositories"
DEFAULT_SOFT_PERCENT = 80


@dataclass(frozen=True, slots=True)
class Usage:
    """A namespace's usage and limits (None: unlimited)."""

    namespace: str
    storage_bytes: int
    repository_count: int
    storage_limit: int | None
    repository_limit: int | None
    soft_percent: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "storage_bytes": self.storage_bytes,
            "repository_count": self.repository_count,
            "storage_limit": self.storage_limit,
            "repository_limit": self.repository_limit,
            "soft_percent": self.soft_percent,
        }


def _upsert(conn: Connection) -> Any:
    return dialect_insert(conn)


def _over_soft(used: Any, limit: Any, percent: Any) -> Any:
    return used * 100 >= percent * limit


_LIMITS = (
    NamespaceUsage.storage_bytes,
    NamespaceUsage.storage_limit,
    NamespaceUsage.soft_percent,
    NamespaceUsage.warned,
)


def _count_ref_statement(dialect: str) -> Insert:
    return (
        dialect_insert_for(dialect, NamespaceBlob)
        .values(namespace=bindparam("p_ns"), digest=bindparam("p_digest"), refs=1, size=bindparam("p_size"))
        .on_conflict_do_update(
            index_elements=[NamespaceBlob.namespace, NamespaceBlob.digest], set_={"refs": NamespaceBlob.refs + 1}
        )
        .returning(NamespaceBlob.refs)
    )


def _add_usage_statement(dialect: str) -> Insert:
    return (
        dialect_insert_for(dialect, NamespaceUsage)
        .values(namespace=bindparam("p_ns"), storage_bytes=bindparam("p_size"))
        .on_conflict_do_update(
            index_elements=[NamespaceUsage.namespace],
            set_={"storage_bytes": NamespaceUsage.storage_bytes + bindparam("p_size", type_=BigInteger)},
        )
        .returning(*_LIMITS)
    )


def count_link(conn: Connection, namespace: str, digest: str, size: int) -> list[dict[str, Any]]:
    """Account for a new link of blob ``digest`` (``size`` bytes) by a repository of ``namespace``. Raises
    ``QuotaExceeded`` if the blob is new to the namespace and takes it past its storage limit. Returns the
    outbox rows to record with the change (a ``quota.warning`` when the soft threshold is crossed)."""
    params = {"p_ns": namespace, "p_digest": digest, "p_size": size}
    refs = conn.execute(prepared(conn, _count_ref_statement), params).scalar_one()
    if refs != 1:
        return []  # another repository of the namespace links it: counted already
    row = conn.execute(prepared(conn, _add_usage_statement), params).one()
    used, limit, percent, warned = int(row[0]), row[1], int(row[2]), bool(row[3])
    if limit is None:
        return []
    if used > limit:
        raise QuotaExceeded(namespace, STORAGE, used, int(limit))
    if warned or used * 100 < percent * limit:
        return []
    conn.execute(update(NamespaceUsage).where(NamespaceUsage.namespace == namespace).values(warned=True))
    payload = {"namespace": namespace, "quota": STORAGE, "used": used, "limit": int(limit), "soft_percent": percent}
    return [event_row(QUOTA_WARNING, payload=payload)]


def release_links(conn: Connection, links: Iterable[tuple[str, str]]) -> None:
    """Account for removed links, one ``(namespace, digest)`` per link removed (repeats allowed): digests no
    repository of the namespace links any more stop counting, and the soft warning re-arms below its threshold."""
    counts = Counter(links)
    if not counts:
        return
    conn.execute(
        update(NamespaceBlob)
        .where(NamespaceBlob.namespace == bindparam("b_ns"), NamespaceBlob.digest == bindparam("b_digest"))
        .values(refs=NamespaceBlob.refs - bindparam("b_n")),
        [{"b_ns": ns, "b_digest": digest, "b_n": n} for (ns, digest), n in sorted(counts.items())],
    )
    by_namespace: dict[str, list[str]] = {}
    for ns, digest in sorted(counts):
        by_namespace.setdefault(ns, []).append(digest)
    for ns, digests in by_namespace.items():
        freed = 0
        for start in range(0, len(digests), 500):
            gone = conn.execute(
                delete(NamespaceBlob)
                .where(
                    NamespaceBlob.namespace == ns,
                    NamespaceBlob.digest.in_(digests[start : start + 500]),
                    NamespaceBlob.refs <= 0,
                )
                .returning(NamespaceBlob.size)
            ).scalars()
            freed += sum(int(size) for size in gone)
        if freed:
            _add_storage(conn, ns, -freed)


def _add_storage(conn: Connection, namespace: str, delta: int) -> None:
    left = NamespaceUsage.storage_bytes + delta
    conn.execute(
        update(NamespaceUsage)
        .where(NamespaceUsage.namespace == namespace)
        .values(
            storage_bytes=left,
            warned=case(
                (NamespaceUsage.storage_limit.is_(None), false()),
                (_over_soft(left, NamespaceUsage.storage_limit, NamespaceUsage.soft_percent), NamespaceUsage.warned),
                else_=false(),
            ),
        )
    )


def count_repository(conn: Connection, namespace: str) -> None:
    """Check a repository just inserted into ``namespace`` against its repository limit, if it has one; raises
    ``QuotaExceeded``. Repositories are counted from ``repositories`` (indexed by namespace), not kept in a
    counter on the usage row: a first push creates its repository before it links blobs, and locking the usage row
    that early would order its locks against those of a concurrent push linking the same blob (blob reference,
    then usage row) and deadlock. With a limit, the namespace's account row is locked first on PostgreSQL, so
    concurrent creations in one namespace count one after the other."""
    limit = conn.execute(_REPOSITORY_LIMIT, {"ns": namespace}).scalar_one_or_none()
    if limit is None:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(select(Account.id).where(Account.name == namespace).with_for_update())
    used = int(conn.execute(_REPOSITORY_COUNT, {"ns": namespace}).scalar_one())
    if used > int(limit):
        raise QuotaExceeded(namespace, REPOSITORIES, used, int(limit))


_REPOSITORY_LIMIT = select(NamespaceUsage.repository_limit).where(NamespaceUsage.namespace == bindparam("ns"))
_REPOSITORY_COUNT = select(func.count()).select_from(Repository).where(Repository.namespace == bindparam("ns"))


def check_storage(conn: Connection, namespace: str) -> None:
    """Refuse (``QuotaExceeded``) a push into a namespace already past its storage limit (a limit lowered below
    the usage): the manifest PUT's check, one indexed read."""
    row = conn.execute(_USAGE_LIMIT, {"ns": namespace}).first()
    if row is not None and row[1] is not None and int(row[0]) > int(row[1]):
        raise QuotaExceeded(namespace, STORAGE, int(row[0]), int(row[1]))


_USAGE_LIMIT = select(NamespaceUsage.storage_bytes, NamespaceUsage.storage_limit).where(
    NamespaceUsage.namespace == bindparam("ns")
)


async def record_refusal(db: Database, exc: QuotaExceeded, *, repository: str | None, actor: str | None) -> None:
    """Write ``quota.exceeded`` for a refused change (whose own transaction rolled back). Logged, never raised:
    the refusal is what the client must see."""
    try:
        async with db.write() as conn:
            await record_event(
                conn,
                QUOTA_EXCEEDED,
                repository=repository,
                actor=actor,
                payload={"namespace": exc.namespace, "quota": exc.quota, "used": exc.used, "limit": exc.limit},
            )
    except Exception:
        log.exception("could not record quota.exceeded for %s", exc.namespace)


def record_warnings(conn: Connection, rows: list[dict[str, Any]], repository: str, actor: str | None) -> None:
    """Record the warnings ``count_link`` returned, naming the repository and actor of the change."""
    if rows:
        for row in rows:
            row["repository"], row["actor"] = repository, actor
        record_events(conn, rows)


async def usage(conn: AsyncConnection, namespace: str) -> Usage:
    """The namespace's usage and limits (zeros and no limits when it has no row yet)."""
    return (await usages(conn, [namespace]))[namespace]


async def usages(conn: AsyncConnection, namespaces: Iterable[str]) -> dict[str, Usage]:
    """``usage`` of several namespaces in two queries."""
    names = sorted(set(namespaces))
    found = {name: Usage(name, 0, 0, None, None, DEFAULT_SOFT_PERCENT) for name in names}
    if not names:
        return found
    count_rows = await conn.execute(
        select(Repository.namespace, func.count()).where(Repository.namespace.in_(names)).group_by(Repository.namespace)
    )
    counts = {str(row[0]): int(row[1]) for row in count_rows}
    rows = await conn.execute(
        select(
            NamespaceUsage.namespace,
            NamespaceUsage.storage_bytes,
            NamespaceUsage.storage_limit,
            NamespaceUsage.repository_limit,
            NamespaceUsage.soft_percent,
        ).where(NamespaceUsage.namespace.in_(names))
    )
    for row in rows:
        found[row[0]] = Usage(row[0], int(row[1]), 0, row[2], row[3], int(row[4]))
    return {name: replace(u, repository_count=counts.get(name, 0)) for name, u in found.items()}


_UNSET: Any = object()


async def set_limits(
    conn: AsyncConnection,
    namespace: str,
    *,
    storage_limit: int | None = _UNSET,
    repository_limit: int | None = _UNSET,
    soft_percent: int | None = None,
) -> Usage:
    """Set the namespace's limits (None: unlimited; an argument left out keeps its value). Lowering a limit
    below the usage deletes nothing: further pushes of new content are refused. Raises ``Invalid("quota")``."""
    values: dict[str, Any] = {}
    for key, value in (("storage_limit", storage_limit), ("repository_limit", repository_limit)):
        if value is _UNSET:
            continue
        if value is not None and value < 0:
            raise Invalid("quota", f"{key} must be at least 0", {"field": key})
        values[key] = value
    if soft_percent is not None:
        if not 1 <= soft_percent <= 100:
            raise Invalid("quota", "soft_percent must be between 1 and 100", {"field": "soft_percent"})
        values["soft_percent"] = soft_percent
    dialect = dialect_insert(conn)
    statement = dialect(NamespaceUsage).values(namespace=namespace, **values)
    if values:
        statement = statement.on_conflict_do_update(index_elements=[NamespaceUsage.namespace], set_=values)
    else:
        statement = statement.on_conflict_do_nothing()
    await conn.execute(statement)
    current = await usage(conn, namespace)
    if current.storage_limit is None or not _soft_crossed(current):
        await conn.execute(update(NamespaceUsage).where(NamespaceUsage.namespace == namespace).values(warned=False))
    return current


def _soft_crossed(current: Usage) -> bool:
    limit = current.storage_limit
    return limit is not None and current.storage_bytes * 100 >= current.soft_percent * limit


def recount_sync(conn: Connection, namespace: str | None = None) -> int:
    """Recompute the reference counts and usage of ``namespace`` (every namespace when None) from the links and
    repositories; limits are kept. Returns the number of namespaces recounted."""
    scope_r = [] if namespace is None else [Repository.namespace == namespace]
    scope_b = [] if namespace is None else [NamespaceBlob.namespace == namespace]
    scope_u = [] if namespace is None else [NamespaceUsage.namespace == namespace]
    conn.execute(delete(NamespaceBlob).where(*scope_b))
    refs = (
        select(Repository.namespace, RepositoryBlob.digest, func.count(), func.max(Blob.size))
        .select_from(RepositoryBlob)
        .join(Repository, Repository.id == RepositoryBlob.repository_id)
        .join(Blob, Blob.digest == RepositoryBlob.digest)
        .where(*scope_r)
        .group_by(Repository.namespace, RepositoryBlob.digest)
    )
    conn.execute(
        insert(NamespaceBlob).from_select(
            [NamespaceBlob.namespace, NamespaceBlob.digest, NamespaceBlob.refs, NamespaceBlob.size], refs
        )
    )
    names = set(conn.execute(select(Repository.namespace).where(*scope_r).distinct()).scalars())
    names |= set(conn.execute(select(NamespaceUsage.namespace).where(*scope_u)).scalars())
    for name in sorted(names):
        stored = conn.execute(
            select(func.coalesce(func.sum(NamespaceBlob.size), literal(0))).where(NamespaceBlob.namespace == name)
        ).scalar_one()
        conn.execute(
            _upsert(conn)(NamespaceUsage)
            .values(namespace=name, storage_bytes=int(stored))
            .on_conflict_do_update(index_elements=[NamespaceUsage.namespace], set_={"storage_bytes": int(stored)})
        )
    return len(names)
