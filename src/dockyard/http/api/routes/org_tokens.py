"""Organization access tokens in the Hub API, as Docker Hub has them (``/api/v2/orgs/{org}/access-tokens``): made
and managed by the organization's owners, scoped to its repositories (``TYPE_REPO`` resources with ``repo-pull``
and ``repo-push``), with an optional expiry. The secret (``dy_oat_…``) is shown once, at creation; it signs in
with the organization's name as the user name (``docker login``, ``POST /api/v2/auth/token``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path, Request, Response
from pydantic import BaseModel, Field

from dockyard.accounts.org_tokens import OrgTokenInfo, Resource
from dockyard.http.api.deps import Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import AccountPath
from dockyard.http.api.schemas.common import NO_CONTENT, PRINTABLE, Timestamp, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["organization access tokens"])

TokenId = Annotated[str, Path(min_length=1, max_length=36, pattern=PRINTABLE, description="the token's id")]
Label = Annotated[str, Field(min_length=1, max_length=100, pattern=PRINTABLE)]
Description = Annotated[str, Field(max_length=255, pattern=r"^[^\x00]*$")]
Scope = Annotated[str, Field(min_length=1, max_length=64, pattern=PRINTABLE)]


class ResourceModel(BaseModel):
    """Docker Hub's ``orgAccessTokenResource``: ``path`` is ``org/repository`` (or ``*/*/public`` with
    ``repo-pull``: public repositories, which anyone may pull)."""

    type: Literal["TYPE_REPO", "TYPE_ORG"]
    path: Annotated[str, Field(min_length=1, max_length=512, pattern=PRINTABLE)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=10)]


Resources = Annotated[list[ResourceModel], Field(max_length=500)]


class CreateOrgToken(BaseModel):
    label: Label
    description: Description = ""
    resources: Resources = []
    expires_at: datetime | None = Field(default=None, description="none: the token does not expire")


class UpdateOrgToken(BaseModel):
    label: Label | None = None
    description: Description | None = None
    resources: Resources | None = Field(default=None, description="replaces every resource")
    is_active: bool | None = None


class OrgToken(BaseModel):
    """Docker Hub's ``orgAccessToken``."""

    id: str
    label: str
    description: str
    created_by: str
    is_active: bool
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Timestamp | None


class OrgTokenDetail(OrgToken):
    resources: list[ResourceModel]


class CreatedOrgToken(OrgTokenDetail):
    token: str = Field(description="the secret: shown this once")


class OrgTokenPage(BaseModel):
    total: int
    next: str | None
    previous: str | None
    results: list[OrgToken]


def _fields(info: OrgTokenInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "label": info.label,
        "description": info.description,
        "created_by": info.created_by,
        "is_active": info.is_active,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "last_used_at": info.last_used_at,
    }


def _resources(info: OrgTokenInfo) -> list[ResourceModel]:
    return [ResourceModel(type=r.type, path=r.path, scopes=list(r.scopes)) for r in info.resources]


def _detail(info: OrgTokenInfo) -> OrgTokenDetail:
    return OrgTokenDetail(**_fields(info), resources=_resources(info))


def _domain(resources: list[ResourceModel]) -> list[Resource]:
    return [Resource(type=r.type, path=r.path, scopes=tuple(r.scopes)) for r in resources]


@router.post(
    "/orgs/{org}/access-tokens",
    response_model=CreatedOrgToken,
    status_code=201,
    responses=error_responses(400, 401, 403, 404),
)
async def create_org_token(
    org: AccountPath, body: CreateOrgToken, request: Request, svc: Services, who: SignedIn
) -> CreatedOrgToken:
    """Make an access token of the organization (owners). Missing repositories named by its resources are
    created, as a push would."""
    info, secret = await svc.org_tokens.create(
        org,
        label=body.label,
        description=body.description,
        resources=_domain(body.resources),
        expires_at=body.expires_at,
        actor=who,
        source_ip=client_ip(request),
    )
    return CreatedOrgToken(**_fields(info), resources=_resources(info), token=secret)


@router.get("/orgs/{org}/access-tokens", response_model=OrgTokenPage, responses=error_responses(401, 403, 404))
async def list_org_tokens(
    org: AccountPath, request: Request, svc: Services, who: SignedIn, page: Paging
) -> OrgTokenPage:
    """The organization's access tokens, newest first (owners)."""
    tokens = await svc.org_tokens.list(org, page, actor=who)
    envelope = paginated(request, tokens, [])
    return OrgTokenPage(
        total=tokens.count,
        next=envelope["next"],
        previous=envelope["previous"],
        results=[OrgToken(**_fields(info)) for info in tokens.items],
    )


@router.get(
    "/orgs/{org}/access-tokens/{token_id}", response_model=OrgTokenDetail, responses=error_responses(401, 403, 404)
)
async def get_org_token(org: AccountPath, token_id: TokenId, svc: Services, who: SignedIn) -> OrgTokenDetail:
    return _detail(await svc.org_tokens.get(org, token_id, actor=who))


@router.patch(
    "/orgs/{org}/access-tokens/{token_id}",
    response_model=OrgTokenDetail,
    responses=error_responses(400, 401, 403, 404),
)
async def update_org_token(
    org: AccountPath, token_id: TokenId, body: UpdateOrgToken, request: Request, svc: Services, who: SignedIn
) -> OrgTokenDetail:
    """Change the label, description or resources, or switch the token off (``is_active: false``) or on."""
    info = await svc.org_tokens.update(
        org,
        token_id,
        label=body.label,
        description=body.description,
        resources=_domain(body.resources) if body.resources is not None else None,
        is_active=body.is_active,
        actor=who,
        source_ip=client_ip(request),
    )
    return _detail(info)


@router.delete(
    "/orgs/{org}/access-tokens/{token_id}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def delete_org_token(
    org: AccountPath, token_id: TokenId, request: Request, svc: Services, who: SignedIn
) -> Response:
    """Delete the token for good (owners)."""
    await svc.org_tokens.delete(org, token_id, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)
