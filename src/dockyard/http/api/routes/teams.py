"""Teams of organizations in the Hub API (Docker Hub calls them groups): the teams, their members, their
read / write / admin permissions on the organization's repositories, and Docker Hub's repository-side view of
those permissions (``/api/v2/repositories/{ns}/{repo}/groups``)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel, Field, model_validator

from dockyard.accounts.names import TEAM_NAME_RE
from dockyard.accounts.snapshots import TeamInfo, TeamMemberInfo
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.core.paging import PageRequest
from dockyard.errors import Denied, NotFound
from dockyard.http.api.deps import ApiServices, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import (
    AccountPath,
    ExistingName,
    NamePath,
    Permission,
    RepositoryPermission,
    Text,
    level_label,
    repository_permission,
)
from dockyard.http.api.schemas.common import (
    MAX_NAME_LENGTH,
    NO_CONTENT,
    PRINTABLE,
    Paginated,
    Timestamp,
    error_responses,
    page_of,
)
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["teams"])

TeamName = Annotated[str, Field(min_length=1, max_length=64, pattern=TEAM_NAME_RE.pattern)]
RepoPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=PRINTABLE,
        description="the repository's name inside the organization (``app`` for ``org/app``; may contain ``/``)",
    ),
]
GroupId = Annotated[int, Path(ge=1, le=2**62, description="the team's id")]


class Team(BaseModel):
    """Docker Hub's ``org_group``."""

    id: int
    uuid: str
    name: str
    description: str
    member_count: int


class CreateTeam(BaseModel):
    name: TeamName
    description: Text = ""


class UpdateTeam(BaseModel):
    name: TeamName | None = None
    description: Text | None = None


class ReplaceTeam(BaseModel):
    name: TeamName
    description: Text = ""


class TeamMember(BaseModel):
    """Docker Hub's ``group_member``."""

    id: str = Field(description="the user's id")
    username: str
    full_name: str
    company: str
    location: str
    profile_url: str
    gravatar_email: str = ""
    gravatar_url: str = ""
    type: Literal["User"] = "User"
    date_joined: Timestamp | None
    email: str | None = Field(
        default=None, exclude_if=lambda v: v is None, description="for the organization's owners only (else absent)"
    )


class AddTeamMember(BaseModel):
    member: ExistingName = Field(description="user name (joins the organization as a member if needed)")


class SetPermission(BaseModel):
    permission: Permission


class GroupPermission(BaseModel):
    """Docker Hub's team access to a repository."""

    group_name: str
    group_id: int | None = Field(description="null when the caller may not list the organization's teams")
    permission: Permission


class GrantGroup(BaseModel):
    """Docker Hub sends ``group_id``; ``group_name`` names the team instead."""

    group_id: int | None = Field(default=None, ge=1, le=2**62)
    group_name: TeamName | None = None
    permission: Permission

    @model_validator(mode="after")
    def _one_team(self) -> GrantGroup:
        if (self.group_id is None) == (self.group_name is None):
            raise ValueError("give exactly one of group_id and group_name")
        return self


def _team(info: TeamInfo) -> Team:
    return Team(
        id=info.id, uuid=info.uuid, name=info.name, description=info.description, member_count=info.member_count
    )


def _team_member(info: TeamMemberInfo) -> TeamMember:
    return TeamMember(
        id=str(info.user_id),
        username=info.username,
        full_name=info.full_name,
        company=info.company,
        location=info.location,
        profile_url=info.profile_url,
        date_joined=info.date_joined,
        email=info.email,
    )


async def _all_teams(svc: ApiServices, org: str, who: Principal) -> list[TeamInfo]:
    teams: list[TeamInfo] = []
    number = 1
    while True:
        page = await svc.teams.list_teams(org, PageRequest(number, 100), actor=who)
        teams.extend(page.items)
        if not page.has_next:
            return teams
        number += 1


async def _team_named_by_id(svc: ApiServices, org: str, group_id: int, who: Principal) -> str:
    for team in await _all_teams(svc, org, who):
        if team.id == group_id:
            return team.name
    raise NotFound("team", "team not found", {"org": org, "group_id": group_id})


# Teams


@router.get("/orgs/{org}/groups", response_model=Paginated[Team], responses=error_responses(401, 403, 404))
async def list_teams(org: AccountPath, request: Request, svc: Services, who: SignedIn, page: Paging) -> dict[str, Any]:
    """The organization's teams by name (visible to its members)."""
    teams = await svc.teams.list_teams(org, page, actor=who)
    return paginated(request, teams, [_team(info) for info in teams.items])


@router.post(
    "/orgs/{org}/groups",
    response_model=Team,
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def create_team(org: AccountPath, body: CreateTeam, request: Request, svc: Services, who: SignedIn) -> Team:
    """Create a team (owners)."""
    info = await svc.teams.create_team(org, body.name, body.description, actor=who, source_ip=client_ip(request))
    return _team(info)


@router.get("/orgs/{org}/groups/{team}", response_model=Team, responses=error_responses(401, 403, 404))
async def get_team(org: AccountPath, team: NamePath, svc: Services, who: SignedIn) -> Team:
    return _team(await svc.teams.get_team(org, team, actor=who))


@router.patch(
    "/orgs/{org}/groups/{team}",
    response_model=Team,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def update_team(
    org: AccountPath, team: NamePath, body: UpdateTeam, request: Request, svc: Services, who: SignedIn
) -> Team:
    """Rename the team or change its description (owners)."""
    info = await svc.teams.update_team(
        org, team, name=body.name, description=body.description, actor=who, source_ip=client_ip(request)
    )
    return _team(info)


@router.put(
    "/orgs/{org}/groups/{team}",
    response_model=Team,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def replace_team(
    org: AccountPath, team: NamePath, body: ReplaceTeam, request: Request, svc: Services, who: SignedIn
) -> Team:
    """Set the team's name and description (an omitted description becomes empty; owners)."""
    info = await svc.teams.update_team(
        org, team, name=body.name, description=body.description, actor=who, source_ip=client_ip(request)
    )
    return _team(info)


@router.delete(
    "/orgs/{org}/groups/{team}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def delete_team(org: AccountPath, team: NamePath, request: Request, svc: Services, who: SignedIn) -> Response:
    """Delete the team and its permissions; its members stay in the organization (owners)."""
    await svc.teams.delete_team(org, team, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)


# Members


@router.get(
    "/orgs/{org}/groups/{team}/members",
    response_model=Paginated[TeamMember],
    responses=error_responses(401, 403, 404),
)
async def list_team_members(
    org: AccountPath,
    team: NamePath,
    request: Request,
    svc: Services,
    who: SignedIn,
    page: Paging,
    search: Annotated[
        str | None, Query(max_length=255, pattern=PRINTABLE, description="in user names and full names")
    ] = None,
) -> dict[str, Any]:
    """The team's members (visible to the organization's members; e-mail addresses to its owners, who may also
    search them)."""
    members = await svc.teams.list_team_members(org, team, page, actor=who, search=search)
    return paginated(request, members, [_team_member(m) for m in members.items])


@router.post(
    "/orgs/{org}/groups/{team}/members",
    response_model=TeamMember,
    status_code=200,
    responses=error_responses(401, 403, 404, 409),
)
async def add_team_member(
    org: AccountPath, team: NamePath, body: AddTeamMember, request: Request, svc: Services, who: SignedIn
) -> TeamMember:
    """Put a user in the team; a user outside the organization joins it as a member (owners)."""
    info = await svc.teams.add_team_member(org, team, body.member, actor=who, source_ip=client_ip(request))
    return _team_member(info)


@router.delete(
    "/orgs/{org}/groups/{team}/members/{username}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def remove_team_member(
    org: AccountPath, team: NamePath, username: AccountPath, request: Request, svc: Services, who: SignedIn
) -> Response:
    """Take a user out of the team; they stay in the organization (owners)."""
    await svc.teams.remove_team_member(org, team, username, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)


# Permissions, from the team's side


@router.get(
    "/orgs/{org}/groups/{team}/repositories",
    response_model=Paginated[RepositoryPermission],
    responses=error_responses(401, 403, 404),
)
async def list_team_permissions(
    org: AccountPath, team: NamePath, request: Request, svc: Services, who: SignedIn, page: Paging
) -> dict[str, Any]:
    """The team's permissions by repository (full names; visible to the organization's members)."""
    grants = page_of(await svc.teams.list_team_permissions(org, team, actor=who), page)
    return paginated(request, grants, [repository_permission(grant) for grant in grants.items])


@router.put(
    "/orgs/{org}/groups/{team}/repositories/{repo:path}",
    response_model=RepositoryPermission,
    responses=error_responses(400, 401, 403, 404),
)
async def set_team_permission(
    org: AccountPath,
    team: NamePath,
    repo: RepoPath,
    body: SetPermission,
    request: Request,
    svc: Services,
    who: SignedIn,
) -> RepositoryPermission:
    """Give the team ``permission`` on ``org/repo`` (replacing what it held), creating the repository if it does
    not exist yet (owners)."""
    grant = await svc.teams.set_team_permission(
        org, team, f"{org}/{repo}", Level.parse(body.permission), actor=who, source_ip=client_ip(request)
    )
    return repository_permission(grant)


@router.delete(
    "/orgs/{org}/groups/{team}/repositories/{repo:path}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def remove_team_permission(
    org: AccountPath, team: NamePath, repo: RepoPath, request: Request, svc: Services, who: SignedIn
) -> Response:
    """Take the team's permission on ``org/repo`` away (owners)."""
    await svc.teams.remove_team_permission(org, team, f"{org}/{repo}", actor=who, source_ip=client_ip(request))
    return Response(status_code=204)


# Permissions, from the repository's side (Docker Hub)


@router.get(
    "/repositories/{ns}/{repo}/groups",
    response_model=Paginated[GroupPermission],
    responses=error_responses(401, 403, 404),
)
async def list_repository_groups(
    ns: AccountPath, repo: NamePath, request: Request, svc: Services, who: SignedIn, page: Paging
) -> dict[str, Any]:
    """The teams holding a permission on the repository (its administrators)."""
    grants = page_of(await svc.teams.list_repository_teams(f"{ns}/{repo}", actor=who), page)
    ids: dict[str, int] = {}
    if grants.items:
        # A robot holding admin on the repository may not list the organization's teams: no ids then.
        with contextlib.suppress(Denied):
            ids = {team.name: team.id for team in await _all_teams(svc, ns, who)}
    results = [
        GroupPermission(group_name=g.team, group_id=ids.get(g.team), permission=level_label(g.level))
        for g in grants.items
    ]
    return paginated(request, grants, results)


@router.post(
    "/repositories/{ns}/{repo}/groups",
    response_model=GroupPermission,
    responses=error_responses(400, 401, 403, 404),
)
async def grant_repository_group(
    ns: AccountPath, repo: NamePath, body: GrantGroup, request: Request, svc: Services, who: SignedIn
) -> GroupPermission:
    """Give a team of the repository's organization ``permission`` on it (owners of the organization)."""
    if body.group_name is not None:
        team = await svc.teams.get_team(ns, body.group_name, actor=who)
    else:
        assert body.group_id is not None
        team = await svc.teams.get_team(ns, await _team_named_by_id(svc, ns, body.group_id, who), actor=who)
    grant = await svc.teams.set_team_permission(
        ns,
        team.name,
        f"{ns}/{repo}",
        Level.parse(body.permission),
        actor=who,
        source_ip=client_ip(request),
    )
    return GroupPermission(group_name=team.name, group_id=team.id, permission=level_label(grant.level))


@router.delete(
    "/repositories/{ns}/{repo}/groups/{group_id}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def revoke_repository_group(
    ns: AccountPath, repo: NamePath, group_id: GroupId, request: Request, svc: Services, who: SignedIn
) -> Response:
    """Take a team's permission on the repository away (owners of the organization)."""
    team = await _team_named_by_id(svc, ns, group_id, who)
    await svc.teams.remove_team_permission(ns, team, f"{ns}/{repo}", actor=who, source_ip=client_ip(request))
    return Response(status_code=204)
