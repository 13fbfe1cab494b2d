"""Repository rows: look-up and create-on-first-push (with its ``repository.created`` event)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.names import namespace_of
from dockyard.errors import NotFound
from dockyard.events.outbox import REPOSITORY_CREATED, record_event
from dockyard.models import Account, Repository
from dockyard.models.base import utcnow
from dockyard.registry.namespaces import claim_namespace

_FIND = select(Repository.id).where(Repository.name == bindparam("name"))


async def find_repository(conn: AsyncConnection, name: str) -> int | None:
    return (await conn.execute(_FIND, {"name": name})).scalar_one_or_none()


async def require_repository(conn: AsyncConnection, name: str) -> int:
    repo_id = await find_repository(conn, name)
    if repo_id is None:
        raise NotFound("repository", "repository name not known to registry", {"name": name})
    return repo_id


async def default_visibility(conn: AsyncConnection, namespace: str, server_default: bool) -> bool:
    """Whether a new repository in ``namespace`` starts private: the namespace's setting, else the server's."""
    own = (await conn.execute(select(Account.default_private).where(Account.name == namespace))).scalar_one_or_none()
    return server_default if own is None else bool(own)


async def ensure_repository(
    conn: AsyncConnection, name: str, actor: str | None = None, *, default_private: bool = True, open_server: bool
) -> int:
    """Return the repository's id, creating it (and recording the event) inside ``conn``'s write transaction.
    On a secure server (not ``open_server``) the namespace must be an account's, or the actor a site
    administrator, whose push creates it as an organization (``claim_namespace``); else ``Denied("account")``."""
    repo_id = await find_repository(conn, name)
    if repo_id is not None:
        return repo_id
    namespace = namespace_of(name)
    if not open_server:
        await claim_namespace(conn, namespace, actor)
    private = await default_visibility(conn, namespace, default_private)
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(Repository)
                .values(name=name, namespace=namespace, is_private=private, created_at=utcnow())
                .returning(Repository.id)
            )
            repo_id = result.scalar_one()
    except IntegrityError:
        # Another replica created it between our look-up and insert.
        return await require_repository(conn, name)
    await record_event(conn, REPOSITORY_CREATED, repository=name, actor=actor)
    return repo_id
