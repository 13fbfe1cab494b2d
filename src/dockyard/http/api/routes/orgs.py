"""Organizations in the Hub API: creation, public profile, changes, deletion, and membership (roles owner /
member)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Request, Response
from pydantic import AfterValidator, BaseModel, Field

from dockyard.accounts.names import validate_profile_url, validate_text
from dockyard.accounts.snapshots import MemberInfo
from dockyard.errors import Invalid
from dockyard.http.api.deps import Caller, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import AccountName, AccountPath, ExistingName, Organization, Text, organization
from dockyard.http.api.schemas.common import NO_CONTENT, Paginated, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["organizations"])

Role = Literal["owner", "member"]


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
    username: str
    full_name: str
    role: Role


class AddMember(BaseModel):
    member: ExistingName = Field(description="user name")
    role: Role = "member"


class SetRole(BaseModel):
    role: Role


def _member(info: MemberInfo) -> Member:
    return Member(username=info.username, full_name=info.full_name, role="owner" if info.role == "owner" else "member")


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


@router.get(
    "/orgs/{org}/members",
    response_model=Paginated[Member],
    responses=error_responses(401, 403, 404),
)
async def list_members(
    org: AccountPath, request: Request, svc: Services, who: SignedIn, page: Paging
) -> dict[str, Any]:
    """Owners and members by name (visible to the organization's members)."""
    members = await svc.orgs.list_members(org, page, actor=who)
    return paginated(request, members, [_member(info) for info in members.items])


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
    """Make a member an owner or an owner a member (owners; the last owner stays)."""
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
