"""Shared by the account services: account look-ups, whether a name is free, the authorization checks they
repeat, row → view conversion, paging, and deleting an account with everything its namespace holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.snapshots import OrgInfo, UserInfo
from dockyard.authz.authorizer import NamespaceResource, Permission, RepositoryFacts, RepositoryResource, require
from dockyard.authz.principal import Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.errors import Denied, NotFound, Subject
from dockyard.events.audit import record_audit
from dockyard.models import Account
from dockyard.models.accounts import ORG, USER
from dockyard.registry.namespaces import forget_reservation, name_use, purge_namespace, retire_name
from dockyard.registry.repositories import delete_repositories, namespace_repositories

T = TypeVar("T")


async def find_account(conn: AsyncConnection, name: str, kinds: Sequence[str]) -> Row[Any] | None:
    return (await conn.execute(select(Account).where(Account.name == name, Account.kind.in_(kinds)))).first()


async def require_user(conn: AsyncConnection, name: str) -> Row[Any]:
    row = await find_account(conn, name, [USER])
    if row is None:
        raise NotFound("account", "user not found", {"name": name[:300]})
    return row


async def require_org(conn: AsyncConnection, name: str) -> Row[Any]:
    row = await find_account(conn, name, [ORG])
    if row is None:
        raise NotFound("organization", "organization not found", {"name": name[:300]})
    return row


async def name_taken(conn: AsyncConnection, name: str) -> bool:
    """An account has ``name``, it is reserved after an account's deletion, or another table names it as a
    namespace (``registry.namespaces.name_use``)."""
    return await name_use(conn, name) is not None


async def require_name_free(conn: AsyncConnection, name: str, subject: Subject, *, adopt: bool = False) -> None:
    """Conflict, saying why, unless ``name`` may become a new account's. ``adopt``: a site administrator creating
    an organization may take a name that only rows of a namespace without an account use (they then belong to
    it). An expired reservation is dropped."""
    use = await name_use(conn, name)
    if use is not None and not (adopt and use.kind == "data"):
        raise use.conflict(name, subject)
    await forget_reservation(conn, name)


def is_self(actor: Principal, account_id: int) -> bool:
    return actor.kind == "user" and actor.account_id == account_id


def require_superuser(actor: Principal, what: str = "do this") -> None:
    if not actor.superuser:
        raise Denied("account", f"only site administrators may {what}")


def require_interactive(actor: Principal, what: str) -> None:
    """Account-level changes need the account's own credentials: a user signed in with a password (or an API
    token obtained with one), not a personal access token, a robot or an anonymous caller."""
    if actor.superuser:
        return
    if actor.kind != "user" or actor.account_id is None:
        raise Denied("account", f"only users may {what}")
    if actor.token_id is not None:
        raise Denied("token", f"a personal access token may not {what}; sign in with a password")


async def require_org_owner(conn: AsyncConnection, actor: Principal, org: str) -> Row[Any]:
    """The organization's row, if ``actor`` owns it (or is a site administrator); Denied otherwise (organizations
    are public: their existence is no secret)."""
    row = await require_org(conn, org)
    await require(conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(org, "organization"))
    return row


async def require_org_member(conn: AsyncConnection, actor: Principal, org: str) -> Row[Any]:
    """The organization's row, if ``actor`` belongs to it (owners and site administrators included)."""
    row = await require_org(conn, org)
    await require(conn, actor, Permission.NAMESPACE_MEMBER, NamespaceResource(org, "organization"), doing="see this")
    return row


async def require_repository_admin(conn: AsyncConnection, actor: Principal, name: str) -> RepositoryFacts:
    """The repository, if ``actor`` holds admin on it. A repository the actor may not even pull is NotFound (its
    existence is not leaked); one it may pull but not administer is Denied."""
    access = await require(conn, actor, Permission.REPOSITORY_ADMIN, RepositoryResource(name))
    assert access.repository is not None
    return access.repository


def user_info(row: Any) -> UserInfo:
    return UserInfo(
        id=row.id,
        name=row.name,
        email=row.email,
        full_name=row.full_name,
        company=row.company,
        location=row.location,
        profile_url=row.profile_url,
        is_admin=bool(row.is_admin),
        disabled=bool(row.disabled),
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
    )


def org_info(row: Any) -> OrgInfo:
    return OrgInfo(
        id=row.id,
        name=row.name,
        full_name=row.full_name,
        company=row.company,
        location=row.location,
        profile_url=row.profile_url,
        description=row.description,
        default_private=row.default_private,
        disabled=bool(row.disabled),
        created_at=row.created_at,
        require_two_factor=bool(row.require_two_factor),
    )


async def paged(
    conn: AsyncConnection, query: Select[*tuple[Any, ...]], page: PageRequest, convert: Callable[[Any], T]
) -> Page[T]:
    """Run ``query`` (already ordered) for one page, and count all its rows."""
    count = (await conn.execute(select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one()
    rows = (await conn.execute(query.limit(page.page_size).offset(page.offset))).all()
    return Page(items=[convert(row) for row in rows], count=int(count), request=page)


async def delete_account(
    conn: AsyncConnection, row: Any, *, action: str, actor: str, source_ip: str, grace: timedelta
) -> tuple[list[str], list[str]]:
    """Delete account ``row`` (a user or an organization) and everything keyed by its namespace, in ``conn``'s
    transaction: its repositories as the Hub's repository delete does them (``repository.deleted`` and
    ``repo.delete`` each, upload sessions too), webhooks with their deliveries, trusted keys and identities, trust
    policies and the managed signing key (``purge_namespace``); memberships, teams, robots, tokens and stars go
    with the account by cascade. Then ``action`` is audited, the namespace's audit log archived and the name
    reserved for ``grace`` (``retire_name``). Returns the repositories deleted and the upload ids whose objects
    the caller drops after the commit (``drop_upload_objects``)."""
    repositories = await namespace_repositories(conn, row.name)
    uploads = await delete_repositories(conn, repositories, actor=actor or None, source_ip=source_ip)
    await purge_namespace(conn, row.name)
    await conn.execute(delete(Account).where(Account.id == row.id))
    await record_audit(
        conn,
        row.name,
        action,
        actor=actor,
        target=row.name,
        source_ip=source_ip,
        data={"repositories": len(repositories)},
    )
    await retire_name(conn, row.name, row.id, row.kind, grace)
    return [repo.name for repo in repositories], uploads
