"""Repository permissions: one function computes what a principal may do to each of several repositories.

Levels are read < write < admin; registry actions follow from them (read → pull, write → pull+push,
admin → pull+push+delete). Sources of a level, highest wins:
- site administrators and open servers: admin everywhere;
- the namespace's owner (the user themselves, or an owner of the organization): admin on every repository in it,
  and the right to create new ones by pushing;
- an editor of the organization: write (pull and push) on every repository it has;
- grants in ``repository_permissions`` to the account (collaborators, robots) or to a team the user is in;
- public repositories: read for everyone, anonymous callers included.
A personal access token then caps the result by its scopes and optional repository list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy import ColumnElement, Row, and_, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.principal import REPO_ADMIN, REPO_PUBLIC_READ, REPO_READ, REPO_WRITE, Principal
from dockyard.core.names import namespace_of
from dockyard.models import Account, OrgMember, Repository, RepositoryPermission, Team, TeamMember, TwoFactor
from dockyard.models.accounts import ORG


class Level(IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Level:
        return cls[value.upper()]


_ACTIONS = {
    Level.NONE: frozenset(),
    Level.READ: frozenset({"pull"}),
    Level.WRITE: frozenset({"pull", "push"}),
    Level.ADMIN: frozenset({"pull", "push", "delete"}),
}


def actions_for(level: Level) -> frozenset[str]:
    return _ACTIONS[level]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the DB says about a principal, loaded once per request."""

    owned_namespaces: frozenset[str]
    member_orgs: frozenset[str]
    team_ids: tuple[int, ...]
    edited_namespaces: frozenset[str] = frozenset()  # organizations where the user is an editor
    # Organizations that require two-factor sign-in of a member who has none: their memberships and teams give
    # nothing (the member is refused their repositories with a message saying why: authorizer._repository).
    blocked_orgs: frozenset[str] = frozenset()


NO_FACTS = Facts(frozenset(), frozenset(), ())


async def load_facts(conn: AsyncConnection, principal: Principal) -> Facts:
    if principal.kind != "user" or principal.account_id is None:
        return NO_FACTS
    memberships = (
        await conn.execute(
            select(Account.id, Account.name, OrgMember.role, Account.require_two_factor)
            .join(OrgMember, OrgMember.org_id == Account.id)
            .where(OrgMember.user_id == principal.account_id, Account.disabled == false())
        )
    ).all()
    blocked: dict[int, str] = {}
    if any(row.require_two_factor for row in memberships):
        enabled = await conn.execute(
            select(TwoFactor.account_id).where(
                TwoFactor.account_id == principal.account_id, TwoFactor.enabled_at.is_not(None)
            )
        )
        if enabled.first() is None:
            blocked = {row.id: row.name for row in memberships if row.require_two_factor}
    orgs = [(row.name, row.role) for row in memberships if row.id not in blocked]
    team_query = select(TeamMember.team_id).where(TeamMember.user_id == principal.account_id)
    if blocked:
        team_query = team_query.join(Team, Team.id == TeamMember.team_id).where(Team.org_id.not_in(sorted(blocked)))
    teams = (await conn.execute(team_query)).scalars().all()
    owned = {principal.name} | {name for name, role in orgs if role == "owner"}
    edited = frozenset(name for name, role in orgs if role == "editor")
    return Facts(
        frozenset(owned),
        frozenset(name for name, _ in orgs),
        tuple(sorted(teams)),
        edited,
        frozenset(blocked.values()),
    )


def cap_by_token(principal: Principal, name: str, level: Level, public: bool) -> Level:
    """Narrow ``level`` by the principal's access-token scopes and repository list (if any)."""
    floor = Level.READ if public else Level.NONE
    scopes = principal.token_scopes
    if scopes is None:
        return max(level, floor)
    if principal.token_repositories is not None and name not in principal.token_repositories:
        return floor
    if REPO_ADMIN in scopes:
        cap = Level.ADMIN
    elif REPO_WRITE in scopes:
        cap = Level.WRITE
    elif REPO_READ in scopes or REPO_PUBLIC_READ in scopes:
        cap = Level.READ
    else:
        cap = Level.NONE
    if REPO_PUBLIC_READ in scopes and not scopes & {REPO_ADMIN, REPO_WRITE, REPO_READ}:
        return floor
    return max(min(level, cap), floor)


RepositoryRow = Row[int, str, str, bool]  # id, name, namespace, is_private


async def repository_rows(conn: AsyncConnection, names: Iterable[str]) -> dict[str, RepositoryRow]:
    """The ``repositories`` rows (id, name, namespace, is_private) of those of ``names`` that exist."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(Repository.id, Repository.name, Repository.namespace, Repository.is_private).where(
            Repository.name.in_(wanted)
        )
    )
    return {row.name: row for row in rows}


async def repository_levels(
    conn: AsyncConnection, principal: Principal, names: Iterable[str], facts: Facts | None = None
) -> dict[str, Level]:
    """The level ``principal`` holds on each repository name (existing or not: for a name that does not exist
    yet, admin means "may create it by pushing")."""
    wanted = sorted(set(names))
    if not wanted or principal.kind == "open":
        return dict.fromkeys(wanted, Level.ADMIN)
    return await levels_of(conn, principal, wanted, await repository_rows(conn, wanted), facts)


async def levels_of(
    conn: AsyncConnection,
    principal: Principal,
    names: Iterable[str],
    by_name: Mapping[str, RepositoryRow],
    facts: Facts | None = None,
) -> dict[str, Level]:
    """``repository_levels`` for rows already read with ``repository_rows``."""
    wanted = sorted(set(names))
    if principal.kind == "open":
        return dict.fromkeys(wanted, Level.ADMIN)
    rows = list(by_name.values())
    if facts is None:
        facts = await load_facts(conn, principal)
    grants: dict[int, Level] = {}
    if principal.account_id is not None and rows:
        who = [RepositoryPermission.account_id == principal.account_id]
        if facts.team_ids:
            who.append(RepositoryPermission.team_id.in_(facts.team_ids))
        for repo_id, permission in await conn.execute(
            select(RepositoryPermission.repository_id, RepositoryPermission.permission).where(
                RepositoryPermission.repository_id.in_([row.id for row in rows]), or_(*who)
            )
        ):
            grants[repo_id] = max(grants.get(repo_id, Level.NONE), Level.parse(permission))
    levels: dict[str, Level] = {}
    for name in wanted:
        row = by_name.get(name)
        namespace = row.namespace if row is not None else namespace_of(name)
        if principal.is_admin or namespace in facts.owned_namespaces:
            level = Level.ADMIN
        elif row is not None:
            level = grants.get(row.id, Level.NONE)
            if namespace in facts.edited_namespaces:
                level = max(level, Level.WRITE)
        else:
            level = Level.NONE
        public = row is not None and not row.is_private
        levels[name] = (
            cap_by_token(principal, name, level, public)
            if principal.kind != "anonymous"
            else (Level.READ if public else Level.NONE)
        )
    return levels


async def repository_level(conn: AsyncConnection, principal: Principal, name: str) -> Level:
    return (await repository_levels(conn, principal, [name]))[name]


def visible_repositories(principal: Principal, facts: Facts) -> ColumnElement[bool]:
    """A WHERE clause on ``repositories`` selecting what ``principal`` may see (pull)."""
    if principal.kind == "open" or (principal.is_admin and principal.token_repositories is None):
        return true()
    public = Repository.is_private == false()
    if principal.account_id is None:
        return public
    who = [RepositoryPermission.account_id == principal.account_id]
    if facts.team_ids:
        who.append(RepositoryPermission.team_id.in_(facts.team_ids))
    granted = Repository.id.in_(select(RepositoryPermission.repository_id).where(or_(*who)))
    seen = facts.owned_namespaces | facts.edited_namespaces
    own: ColumnElement[bool] = Repository.namespace.in_(sorted(seen)) if seen else false()
    mine = true() if principal.is_admin else or_(own, granted)
    if principal.token_scopes is not None and principal.token_scopes <= {REPO_PUBLIC_READ}:
        mine = false()
    if principal.token_repositories is not None:
        mine = and_(mine, Repository.name.in_(sorted(principal.token_repositories)))
    return or_(public, mine)


async def namespace_role(conn: AsyncConnection, principal: Principal, namespace: str) -> str | None:
    """``owner`` (may administer the namespace), ``editor`` or ``member`` (of an organization) or None. Tokens with less
    than ``repo:admin`` never administer a namespace."""
    if principal.kind == "open":
        return "owner"
    if principal.kind != "user" or principal.account_id is None:
        return None
    admin_capable = principal.token_scopes is None or REPO_ADMIN in principal.token_scopes
    if principal.is_admin or namespace == principal.name:
        return "owner" if admin_capable else "member"
    role = (
        await conn.execute(
            select(OrgMember.role)
            .join(Account, Account.id == OrgMember.org_id)
            .where(Account.name == namespace, Account.kind == ORG, OrgMember.user_id == principal.account_id)
        )
    ).scalar_one_or_none()
    if role in ("owner", "editor") and not admin_capable:
        return "member"
    return role
