"""Teams inside organizations, their members, and their read / write / admin grants on the organization's
repositories (``repository_permissions`` rows with ``team_id``).

Owners of the organization (and site administrators) manage teams; members see them. Adding a user to a team
makes them a member of the organization first if they were not one (as Docker Hub does).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.common import (
    paged,
    require_org_member,
    require_org_owner,
    require_repository_admin,
    require_user,
)
from dockyard.accounts.grants import grant, org_repository, revoke
from dockyard.accounts.names import validate_team_name, validate_text
from dockyard.accounts.orgs import add_membership, is_org_owner
from dockyard.accounts.snapshots import MEMBER, RepositoryGrant, TeamGrant, TeamInfo, TeamMemberInfo
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import Conflict, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Account, OrgMember, Repository, RepositoryPermission, Team, TeamMember
from dockyard.models.base import utcnow
from dockyard.settings import Settings

_MEMBER_COUNT = (
    select(func.count()).select_from(TeamMember).where(TeamMember.team_id == Team.id).scalar_subquery().label("members")
)


class TeamService:
    """Teams. Raises NotFound (no such organization, team, user or grant), Denied (not an owner; for reads, not a
    member), Conflict (team name taken, already in the team) and Invalid."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def create_team(
        self, org: str, name: str, description: str = "", *, actor: Principal, source_ip: str = ""
    ) -> TeamInfo:
        name = validate_team_name(name)
        description = validate_text(description, "description")
        try:
            async with self._db.write() as conn:
                org_row = await require_org_owner(conn, actor, org)
                if await _find_team(conn, org_row.id, name) is not None:
                    raise Conflict("team", "a team of this name exists", {"org": org, "team": name})
                await conn.execute(
                    insert(Team).values(org_id=org_row.id, name=name, description=description, created_at=utcnow())
                )
                await record_audit(conn, org, "team.create", actor=actor.audit_name, target=name, source_ip=source_ip)
                return await _team_info(conn, org, org_row.id, name)
        except IntegrityError as exc:  # a concurrent creation (PostgreSQL)
            raise Conflict("team", "a team of this name exists", {"org": org, "team": name}) from exc

    async def list_teams(self, org: str, page: PageRequest, *, actor: Principal) -> Page[TeamInfo]:
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_member(conn, actor, org)
            query = select(Team, _MEMBER_COUNT).where(Team.org_id == org_row.id).order_by(Team.name)
            return await paged(conn, query, page, lambda row: _to_info(org, row))

    async def get_team(self, org: str, team: str, *, actor: Principal) -> TeamInfo:
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_member(conn, actor, org)
            return await _team_info(conn, org, org_row.id, team)

    async def update_team(
        self,
        org: str,
        team: str,
        *,
        name: str | None = None,
        description: str | None = None,
        actor: Principal,
        source_ip: str = "",
    ) -> TeamInfo:
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = validate_team_name(name)
        if description is not None:
            values["description"] = validate_text(description, "description")
        try:
            return await self._update_team(org, team, values, actor, source_ip)
        except IntegrityError as exc:  # a concurrent rename or creation took the name (PostgreSQL)
            raise Conflict("team", "a team of this name exists", {"org": org, "team": values["name"]}) from exc

    async def _update_team(
        self, org: str, team: str, values: dict[str, Any], actor: Principal, source_ip: str
    ) -> TeamInfo:
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team)
            if values.get("name", team) != team and await _find_team(conn, org_row.id, values["name"]) is not None:
                raise Conflict("team", "a team of this name exists", {"org": org, "team": values["name"]})
            if values:
                await conn.execute(update(Team).where(Team.id == team_row.id).values(**values))
                await record_audit(
                    conn,
                    org,
                    "team.update",
                    actor=actor.audit_name,
                    target=team,
                    source_ip=source_ip,
                    data=values,
                )
            return await _team_info(conn, org, org_row.id, values.get("name", team))

    async def delete_team(self, org: str, team: str, *, actor: Principal, source_ip: str = "") -> None:
        """Delete a team; its members stay in the organization, its grants go."""
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team)
            await conn.execute(delete(Team).where(Team.id == team_row.id))
            await record_audit(conn, org, "team.delete", actor=actor.audit_name, target=team, source_ip=source_ip)

    async def add_team_member(
        self, org: str, team: str, username: str, *, actor: Principal, source_ip: str = ""
    ) -> TeamMemberInfo:
        """Put a user in a team (joining the organization as a member if needed). Conflict if already in it."""
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team)
            user = await require_user(conn, username)
            in_org = (
                await conn.execute(
                    select(OrgMember.role).where(OrgMember.org_id == org_row.id, OrgMember.user_id == user.id)
                )
            ).first()
            if in_org is None:
                await add_membership(conn, org_row.id, org, user.id, username, MEMBER, actor, source_ip)
            elif await _in_team(conn, team_row.id, user.id):
                raise Conflict("member", "the user is already in the team", {"team": team, "username": username})
            if not await insert_ignore(conn, TeamMember, {"team_id": team_row.id, "user_id": user.id}):
                raise Conflict("member", "the user is already in the team", {"team": team, "username": username})
            await record_audit(
                conn,
                org,
                "team.member.add",
                actor=actor.audit_name,
                target=username,
                source_ip=source_ip,
                data={"team": team},
            )
            return _team_member(user, True)

    async def remove_team_member(
        self, org: str, team: str, username: str, *, actor: Principal, source_ip: str = ""
    ) -> None:
        """Take a user out of a team (they stay in the organization)."""
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team)
            user = await require_user(conn, username)
            if not await _in_team(conn, team_row.id, user.id):
                raise NotFound("member", "the user is not in the team", {"team": team, "username": username})
            await conn.execute(
                delete(TeamMember).where(TeamMember.team_id == team_row.id, TeamMember.user_id == user.id)
            )
            await record_audit(
                conn,
                org,
                "team.member.remove",
                actor=actor.audit_name,
                target=username,
                source_ip=source_ip,
                data={"team": team},
            )

    async def list_team_members(
        self, org: str, team: str, page: PageRequest, *, actor: Principal, search: str | None = None
    ) -> Page[TeamMemberInfo]:
        """The team's members by name, optionally those whose name or full name contains ``search`` (or, for the
        organization's owners, whose e-mail address does; only they see addresses)."""
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_member(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team)
            owner = await is_org_owner(conn, actor, org_row.id)
            query = (
                select(Account)
                .join(TeamMember, TeamMember.user_id == Account.id)
                .where(TeamMember.team_id == team_row.id)
                .order_by(Account.name)
            )
            if search:
                fields = [Account.name, Account.full_name] + ([Account.email] if owner else [])
                query = query.where(or_(*(field.contains(search, autoescape=True) for field in fields)))
            return await paged(conn, query, page, lambda r: _team_member(r, owner))

    async def set_team_permission(
        self, org: str, team: str, repository: str, level: Level, *, actor: Principal, source_ip: str = ""
    ) -> RepositoryGrant:
        """Grant (or change) a team's level on a repository of the organization's namespace, creating the
        repository if it does not exist yet."""
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team)
            repo_id = await org_repository(conn, org, repository, self._settings, actor, source_ip=source_ip)
            await grant(conn, repo_id, level, team_id=team_row.id)
            await record_audit(
                conn,
                org,
                "repo.permission.change",
                actor=actor.audit_name,
                target=repository,
                source_ip=source_ip,
                data={"team": team, "permission": level.label},
            )
        return RepositoryGrant(repository=repository, level=level)

    async def remove_team_permission(
        self, org: str, team: str, repository: str, *, actor: Principal, source_ip: str = ""
    ) -> None:
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team)
            await revoke(conn, repository, team_id=team_row.id)
            await record_audit(
                conn,
                org,
                "repo.permission.change",
                actor=actor.audit_name,
                target=repository,
                source_ip=source_ip,
                data={"team": team, "permission": None},
            )

    async def list_team_permissions(self, org: str, team: str, *, actor: Principal) -> list[RepositoryGrant]:
        """The team's grants, by repository name (visible to the organization's members)."""
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_member(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team)
            rows = await conn.execute(
                select(Repository.name, RepositoryPermission.permission)
                .join(RepositoryPermission, RepositoryPermission.repository_id == Repository.id)
                .where(RepositoryPermission.team_id == team_row.id)
                .order_by(Repository.name)
            )
            return [RepositoryGrant(repository=name, level=Level.parse(level)) for name, level in rows]

    async def list_repository_teams(self, repository: str, *, actor: Principal) -> list[TeamGrant]:
        """The teams holding a grant on a repository, by team name (repository admins only)."""
        async with self._db.read(consistent=True) as conn:
            repo = await require_repository_admin(conn, actor, repository)
            rows = await conn.execute(
                select(Team.name, RepositoryPermission.permission)
                .join(RepositoryPermission, RepositoryPermission.team_id == Team.id)
                .where(RepositoryPermission.repository_id == repo.id)
                .order_by(Team.name)
            )
            return [TeamGrant(team=name, level=Level.parse(level)) for name, level in rows]


async def _find_team(conn: AsyncConnection, org_id: int, name: str) -> Row[Any] | None:
    return (await conn.execute(select(Team).where(Team.org_id == org_id, Team.name == name))).first()


async def _require_team(conn: AsyncConnection, org_id: int, org: str, name: str) -> Row[Any]:
    row = await _find_team(conn, org_id, name)
    if row is None:
        raise NotFound("team", "team not found", {"org": org, "team": name[:100]})
    return row


def _team_member(row: Any, show_email: bool) -> TeamMemberInfo:
    return TeamMemberInfo(
        username=row.name,
        full_name=row.full_name,
        user_id=row.id,
        email=row.email if show_email else None,
        company=row.company,
        location=row.location,
        profile_url=row.profile_url,
        date_joined=row.created_at,
    )


async def _in_team(conn: AsyncConnection, team_id: int, user_id: int) -> bool:
    found = await conn.execute(
        select(TeamMember.user_id).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
    )
    return found.first() is not None


async def _team_info(conn: AsyncConnection, org: str, org_id: int, name: str) -> TeamInfo:
    row = (await conn.execute(select(Team, _MEMBER_COUNT).where(Team.org_id == org_id, Team.name == name))).first()
    if row is None:
        raise NotFound("team", "team not found", {"org": org, "team": name[:100]})
    return _to_info(org, row)


def _to_info(org: str, row: Any) -> TeamInfo:
    return TeamInfo(
        id=row.id,
        org=org,
        name=row.name,
        description=row.description,
        member_count=int(row.members),
        created_at=row.created_at,
        uuid=row.uuid,
    )
