"""Rows of ``repository_permissions``: granting, changing and revoking one team's or one account's level on one
repository. Shared by teams, robots and collaborators; callers authorize and audit."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.core.names import namespace_of, validate_name
from dockyard.db.statements import insert_ignore
from dockyard.errors import Invalid, NotFound
from dockyard.models import RepositoryPermission
from dockyard.registry.repositories import ensure_repository, find_repository
from dockyard.settings import Settings


def grantable_level(level: Level) -> Level:
    if not isinstance(level, Level) or level == Level.NONE:
        raise Invalid("permission", "permission must be read, write or admin")
    return level


def parse_level(value: str) -> Level:
    """``read`` / ``write`` / ``admin`` → Level (Invalid otherwise)."""
    try:
        return grantable_level(Level.parse(value))
    except KeyError:
        raise Invalid("permission", "permission must be read, write or admin", {"permission": value[:20]}) from None


def check_org_repositories(org: str, levels: Mapping[str, Level]) -> dict[str, Level]:
    """Validate grants on repositories of ``org``'s namespace: names, levels, namespace."""
    checked: dict[str, Level] = {}
    for repository, level in levels.items():
        validate_name(repository)
        if namespace_of(repository) != org:
            raise Invalid(
                "permission",
                f"only repositories of the {org} namespace may be granted here",
                {"repository": repository, "namespace": org},
            )
        checked[repository] = grantable_level(level)
    return checked


async def org_repository(
    conn: AsyncConnection, org: str, repository: str, settings: Settings, actor: Principal, *, source_ip: str = ""
) -> int:
    """The id of ``repository`` (which must be in ``org``'s namespace), creating it if it does not exist yet
    (``registry.repositories.ensure_repository``, as a push does)."""
    check_org_repositories(org, {repository: Level.READ})
    return await ensure_repository(
        conn,
        repository,
        actor.audit_name or None,
        default_private=settings.default_private,
        open_server=settings.open,
        source_ip=source_ip,
    )


async def grant(
    conn: AsyncConnection,
    repository_id: int,
    level: Level,
    *,
    team_id: int | None = None,
    account_id: int | None = None,
) -> None:
    """Give the team or the account ``level`` on the repository (replacing the level it held)."""
    grantable_level(level)
    if (team_id is None) == (account_id is None):
        raise ValueError("grant to exactly one of a team or an account")
    inserted = await insert_ignore(
        conn,
        RepositoryPermission,
        {"repository_id": repository_id, "team_id": team_id, "account_id": account_id, "permission": level.label},
    )
    if not inserted:
        holder = (
            RepositoryPermission.team_id == team_id
            if team_id is not None
            else RepositoryPermission.account_id == account_id
        )
        await conn.execute(
            update(RepositoryPermission)
            .where(RepositoryPermission.repository_id == repository_id, holder)
            .values(permission=level.label)
        )


async def revoke(
    conn: AsyncConnection, repository: str, *, team_id: int | None = None, account_id: int | None = None
) -> None:
    """Remove the team's or the account's grant on ``repository``; NotFound if it held none."""
    if (team_id is None) == (account_id is None):
        raise ValueError("revoke from exactly one of a team or an account")
    repository_id = await find_repository(conn, repository)
    removed = 0
    if repository_id is not None:
        holder = (
            RepositoryPermission.team_id == team_id
            if team_id is not None
            else RepositoryPermission.account_id == account_id
        )
        result = await conn.execute(
            delete(RepositoryPermission).where(RepositoryPermission.repository_id == repository_id, holder)
        )
        removed = result.rowcount
    if not removed:
        raise NotFound("permission", "no such permission", {"repository": repository[:300]})


async def grant_org_repositories(
    conn: AsyncConnection,
    org: str,
    account_id: int,
    levels: Mapping[str, Level],
    settings: Settings,
    actor: Principal,
    *,
    source_ip: str = "",
) -> None:
    """Give ``account_id`` (a robot of ``org``) each level of ``levels`` on its repository of ``org``, creating a
    repository that does not exist yet (``org_repository``). Robots and organization access tokens both grant so."""
    for repository in sorted(levels):
        repo_id = await org_repository(conn, org, repository, settings, actor, source_ip=source_ip)
        await grant(conn, repo_id, levels[repository], account_id=account_id)
