"""An organization's SCIM token in the Hub API (a Dockyard extension; Docker Hub makes it in its admin console):
``POST /api/v2/orgs/{org}/scim-token`` creates or rotates it (the secret, ``dy_scim_…``, is shown once),
``GET`` shows its prefix and dates, ``DELETE`` revokes it. Organization owners only."""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import BaseModel, Field

from dockyard.accounts.scim_tokens import ScimTokenInfo
from dockyard.http.api.deps import Services, SignedIn
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import AccountPath
from dockyard.http.api.schemas.common import NO_CONTENT, Timestamp, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["scim"])


class ScimToken(BaseModel):
    org: str
    token_prefix: str = Field(description="the secret's first characters, to recognise it")
    created_by: str
    created_at: Timestamp
    last_used_at: Timestamp | None


class CreatedScimToken(ScimToken):
    token: str = Field(description="the secret: shown this once; the identity provider sends it as a bearer token")
    scim_base_url: str = Field(description="the SCIM base URL to give the identity provider")


def _fields(info: ScimTokenInfo) -> dict[str, object]:
    return {
        "org": info.org,
        "token_prefix": info.token_prefix,
        "created_by": info.created_by,
        "created_at": info.created_at,
        "last_used_at": info.last_used_at,
    }


@router.post(
    "/orgs/{org}/scim-token", response_model=CreatedScimToken, status_code=201, responses=error_responses(401, 403, 404)
)
async def create_scim_token(org: AccountPath, request: Request, svc: Services, who: SignedIn) -> CreatedScimToken:
    """Create the organization's SCIM token, replacing any previous one (which stops working at once)."""
    info, secret = await svc.scim_tokens.create(org, actor=who, source_ip=client_ip(request))
    base = str(request.base_url).rstrip("/")
    return CreatedScimToken(**_fields(info), token=secret, scim_base_url=f"{base}/api/v2/scim/2.0")


@router.get("/orgs/{org}/scim-token", response_model=ScimToken, responses=error_responses(401, 403, 404))
async def get_scim_token(org: AccountPath, svc: Services, who: SignedIn) -> ScimToken:
    """The token's prefix, creator, creation and last use (404 when the organization has none)."""
    return ScimToken(**_fields(await svc.scim_tokens.get(org, actor=who)))


@router.delete(
    "/orgs/{org}/scim-token",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def revoke_scim_token(org: AccountPath, request: Request, svc: Services, who: SignedIn) -> Response:
    """Revoke the token: the identity provider's requests are refused from now on."""
    await svc.scim_tokens.revoke(org, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)
