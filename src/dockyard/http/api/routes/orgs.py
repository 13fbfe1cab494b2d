"""Organizations in the Hub API: creation, public profile, changes, deletion, and membership (roles owner /
editor / member; members as Docker Hub shows them, and their CSV export)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dockyard.accounts.invites import InviteInfo
from dockyard.accounts.names import validate_profile_url, validate_text
from dockyard.accounts.snapshots import MemberInfo, OrgInfo
from dockyard.errors import Invalid
from dockyard.http.api.deps import Caller, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import AccountName, AccountPath, ExistingName, Organization, Text, organization
from dockyard.http.api.schemas.common import NO_CONTENT, PRINTABLE, Paginated, Timestamp, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["organizations"])

Role = Literal["owner", "editor", "member"]
# Docker Hub's spelling of a role in member objects (requests spell it in lower case).
HUB_ROLES: dict[str, str] = {"owner": "Owner", "editor": "Editor", "member": "Member"}
ROLE_FILTER = Annotated[Role | None, Query(description="only members with this role")]
SEARCH = Annotated[str | None, Query(max_length=255, pattern=PRINTABLE, description="user names containing this")]


def _checked_url(value: str) -> str:
    try:
        return validate_profile_url(value)
    except Invalid as exc:
        raise ValueError(exc.message) from None


def _checked_text(value: str) -> str:
    try:
        return validate_text(value, "text")
    except Invalid as exc:
        raise ValueError(exc.message) from None


CheckedText = Annotated[Text, AfterValidator(_checked_text)]
ProfileUrl = Annotated[Text, AfterValidator(_checked_url)]


class CreateOrg(BaseModel):
    orgname: AccountName
    full_name: CheckedText | None = None
    company: CheckedText | None = None
    location: CheckedText | None = None
    profile_url: ProfileUrl | None = None
    owner: ExistingName | None = Field(
        default=None, description="the first owner (site administrators only; default: the caller)"
    )


class UpdateOrg(BaseModel):
    full_name: Text | None = None
    company: Text | None = None
    location: Text | None = None
    profile_url: Text | None = None
    description: Text | None = None
    default_private: bool | None = None


class Member(BaseModel):
    """An organization member as Docker Hub's ``org_member``."""

    id: str = Field(description="the user's id")
    username: str
    full_name: str
    company: str
    location: str
    profile_url: str
    gravatar_email: str = ""
    gravatar_url: str = ""
    type: Literal["User"] = "User"
    date_joined: Timestamp = Field(description="when the user joined the organization")
    email: str | None = Field(
        default=None, exclude_if=lambda v: v is None, description="for the organization's owners only (else absent)"
    )
    role: Literal["Owner", "Editor", "Member"]
    groups: list[str] = Field(description="the organization's teams the user is in")
    is_guest: bool = False


class AddMember(BaseModel):
    member: ExistingName = Field(description="user name")
    role: Role = "member"


class SetRole(BaseModel):
    role: Role


def _member(info: MemberInfo) -> Member:
    return Member(
        id=str(info.user_id),
        username=info.username,
        full_name=info.full_name,
        company=info.company,
        location=info.location,
        profile_url=info.profile_url,
        date_joined=info.joined_at,
        email=info.email,
        role=HUB_ROLES[info.role],
        groups=list(info.groups),
    )


def _members_csv(org: str, members: list[MemberInfo], invites: list[InviteInfo]) -> Response:
    """Docker Hub's members export: one row per member, ``Permission`` Owner or Member (an editor's is Member;
    ``Role`` names it), then one per pending invitation (``Type`` Invitee, no teams, ``Date Joined`` when it was
    made)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Name", "Username", "Email", "Type", "Permission", "Role", "Teams", "Date Joined"])
    for m in members:
        permission = "Owner" if m.role == "owner" else "Member"
        joined = m.joined_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")
        row = [m.full_name, m.username, m.email or "", "User", permission, HUB_ROLES[m.role], ", ".join(m.groups)]
        writer.writerow([_csv_safe(cell) for cell in [*row, joined]])
    for i in invites:
        permission = "Owner" if i.role == "owner" else "Member"
        invited = i.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")
        email, username = (i.invitee, "") if "@" in i.invitee else ("", i.invitee)
        row = ["", username, email, "Invitee", permission, HUB_ROLES[i.role], ""]
        writer.writerow([_csv_safe(cell) for cell in [*row, invited]])
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment;filename="{org}-members-{stamp}.csv"'},
    )


def _csv_safe(cell: str) -> str:
    """A cell a spreadsheet will not run as a formula (full names are free text)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


@router.post(
    "/orgs",
    response_model=Organization,
    status_code=201,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def create_org(body: CreateOrg, request: Request, svc: Services, who: SignedIn) -> Organization:
    """Create an organization owned by the caller (site administrators may name another ``owner``). Needs a
    password sign-in, not an access token."""
    ip = client_ip(request)
    info = await svc.orgs.create_org(body.orgname, owner=body.owner, actor=who, source_ip=ip)
    profile = body.model_dump(include={"full_name", "company", "location", "profile_url"}, exclude_none=True)
    if profile:
        info = await svc.orgs.update_org(body.orgname, **profile, actor=who, source_ip=ip)
    return organization(info, svc.settings.default_private)


@router.get("/orgs/{org}", response_model=Organization, responses=error_responses(401, 404))
async def get_org(org: AccountPath, svc: Services, who: Caller) -> Organization:
    """An organization's public profile."""
    return organization(await svc.orgs.get_org(org), svc.settings.default_private)


@router.patch(
    "/orgs/{org}",
    response_model=Organization,
    responses=error_responses(400, 401, 403, 404),
)
async def update_org(org: AccountPath, body: UpdateOrg, request: Request, svc: Services, who: SignedIn) -> Organization:
    """Change the given fields (owners)."""
    info = await svc.orgs.update_org(org, **body.model_dump(exclude_none=True), actor=who, source_ip=client_ip(request))
    return organization(info, svc.settings.default_private)


@router.delete(
    "/orgs/{org}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def delete_org(org: AccountPath, request: Request, svc: Services, who: SignedIn) -> Response:
    """Delete the organization with its repositories, webhooks, trust settings, teams and robots (owners, with a
    password sign-in). Its audit log is archived and its name reserved for `deleted_name_grace_days`."""
    await svc.orgs.delete_org(org, actor=who, source_ip=client_ip(request))
    svc.checker.forget(org)  # its trust policies and keys are gone
    return Response(status_code=204)


class RestrictedImages(BaseModel):
    """Docker Hub's image restriction for Docker Desktop users. Dockyard cannot enforce it (it is the desktop's
    policy, not the registry's), so it is always off and only "off" is accepted."""

    model_config = ConfigDict(extra="forbid")

    enabled: Literal[False] = False
    allow_official_images: Literal[True] = True
    allow_verified_publishers: Literal[True] = True


class OrgSettings(BaseModel):
    """Docker Hub's ``orgSettings``, and the settings Dockyard enforces."""

    restricted_images: RestrictedImages
    default_private: bool = Field(description="new repositories of the organization are private")
    require_two_factor: bool = Field(
        description="members without two-factor sign-in are refused the organization's repositories (docs/auth.md)"
    )


class PutOrgSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown setting is refused (422), never silently dropped

    restricted_images: RestrictedImages
    default_private: bool | None = Field(default=None, description="unchanged when omitted")
    require_two_factor: bool | None = Field(
        default=None, description="unchanged when omitted; turning it on needs an owner with two-factor sign-in"
    )


def _settings(info: OrgInfo, server_default_private: bool) -> OrgSettings:
    private = info.default_private if info.default_private is not None else server_default_private
    return OrgSettings(
        restricted_images=RestrictedImages(), default_private=private, require_two_factor=info.require_two_factor
    )


@router.get("/orgs/{org}/settings", response_model=OrgSettings, responses=error_responses(401, 403, 404))
async def get_settings(org: AccountPath, svc: Services, who: SignedIn) -> OrgSettings:
    """The organization's settings (its members)."""
    return _settings(await svc.orgs.get_settings(org, actor=who), svc.settings.default_private)


@router.put("/orgs/{org}/settings", response_model=OrgSettings, responses=error_responses(401, 403, 404))
async def put_settings(
    org: AccountPath, body: PutOrgSettings, request: Request, svc: Services, who: SignedIn
) -> OrgSettings:
    """Change the organization's settings (owners). ``restricted_images`` can only be off; unknown settings are
    refused."""
    info = await svc.orgs.update_org(
        org,
        default_private=body.default_private,
        require_two_factor=body.require_two_factor,
        actor=who,
        source_ip=client_ip(request),
    )
    return _settings(info, svc.settings.default_private)


@router.get(
    "/orgs/{org}/members",
    response_model=Paginated[Member],
    responses=error_responses(401, 403, 404),
)
async def list_members(
    org: AccountPath,
    request: Request,
    svc: Services,
    who: SignedIn,
    page: Paging,
    role: ROLE_FILTER = None,
    search: SEARCH = None,
) -> dict[str, Any]:
    """Members by name with their role and teams (visible to the organization's members; e-mail addresses to its
    owners)."""
    members = await svc.orgs.list_members(org, page, actor=who, role=role, search=search)
    return paginated(request, members, [_member(info) for info in members.items])


@router.get(
    "/orgs/{org}/members/export",
    response_class=Response,
    responses={
        200: {"description": "the members as CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
        **error_responses(401, 403, 404),
    },
)
async def export_members(org: AccountPath, svc: Services, who: SignedIn) -> Response:
    """Every member as CSV, as Docker Hub exports them, and the pending invitations (``Type`` Invitee) (owners)."""
    members = await svc.orgs.export_members(org, actor=who)
    invites = [i for i in await svc.invites.list(org, base_url="", actor=who) if not i.expired]
    return _members_csv(org, members, invites)


@router.post(
    "/orgs/{org}/members",
    response_model=Member,
    status_code=201,
    responses=error_responses(401, 403, 404, 409),
)
async def add_member(org: AccountPath, body: AddMember, request: Request, svc: Services, who: SignedIn) -> Member:
    """Add a user to the organization (owners)."""
    info = await svc.orgs.add_member(org, body.member, body.role, actor=who, source_ip=client_ip(request))
    return _member(info)


@router.get(
    "/orgs/{org}/members/{username}",
    response_model=Member,
    responses=error_responses(401, 403, 404),
)
async def get_member(org: AccountPath, username: AccountPath, svc: Services, who: SignedIn) -> Member:
    return _member(await svc.orgs.get_member(org, username, actor=who))


@router.put(
    "/orgs/{org}/members/{username}",
    response_model=Member,
    responses=error_responses(401, 403, 404, 409),
)
async def set_member_role(
    org: AccountPath, username: AccountPath, body: SetRole, request: Request, svc: Services, who: SignedIn
) -> Member:
    """Change a member's role: owner, editor (pushes to every repository) or member (owners; the last owner
    stays)."""
    info = await svc.orgs.set_member_role(org, username, body.role, actor=who, source_ip=client_ip(request))
    return _member(info)


@router.delete(
    "/orgs/{org}/members/{username}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404, 409)},
)
async def remove_member(
    org: AccountPath, username: AccountPath, request: Request, svc: Services, who: SignedIn
) -> Response:
    """Remove a user from the organization and its teams (owners; members may leave). The last owner stays."""
    await svc.orgs.remove_member(org, username, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)
