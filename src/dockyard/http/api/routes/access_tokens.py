"""Personal access tokens in the Hub API (Docker Hub's ``/v2/access-tokens``): create (the secret is in the
creation response only), list, show, relabel / revoke / re-activate, delete. Managed with the account's own
credentials: a caller signed in with an access token may not manage tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from dockyard.accounts.access_tokens import MAX_LABEL_LENGTH, MAX_TOKEN_REPOSITORIES
from dockyard.accounts.snapshots import TokenInfo
from dockyard.http.api.deps import Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import MAX_NAME_LENGTH, NO_CONTENT, PRINTABLE, Paginated, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["access tokens"])

Scope = Literal["repo:admin", "repo:write", "repo:read", "repo:public_read"]
Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_LENGTH, pattern=PRINTABLE)]
RepositoryName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE)]
TokenId = Annotated[str, Path(min_length=1, max_length=64, pattern=PRINTABLE, description="the token's uuid")]


class CreateToken(BaseModel):
    token_label: Label
    scopes: list[Scope] = Field(min_length=1, max_length=16)
    expires_at: AwareDatetime | None = Field(default=None, description="RFC 3339 with a time zone; none: never")
    repositories: list[RepositoryName] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TOKEN_REPOSITORIES,
        description="the only repositories the token may use (none: every repository the account may use)",
    )

    @field_validator("expires_at")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        try:
            return value.astimezone(UTC) if value is not None else None
        except OverflowError:
            raise ValueError("expires_at is out of range") from None


class UpdateToken(BaseModel):
    token_label: Label | None = None
    is_active: bool | None = Field(default=None, description="false revokes the token at once; true re-activates")


class AccessToken(BaseModel):
    """A personal access token (Docker Hub's shape), without its secret."""

    uuid: str
    client_id: str
    creator_ip: str
    creator_ua: str
    created_at: datetime
    last_used: datetime | None
    generated_by: str
    is_active: bool
    token_label: str
    scopes: list[str]
    expires_at: datetime | None
    repositories: list[str] | None


class CreatedAccessToken(AccessToken):
    token: str = Field(description="the secret: shown in this response only")


def _token(info: TokenInfo) -> dict[str, Any]:
    return {
        "uuid": info.uuid,
        "client_id": info.client_id,
        "creator_ip": info.creator_ip,
        "creator_ua": "",  # not recorded
        "created_at": info.created_at,
        "last_used": info.last_used,
        "generated_by": info.generated_by,
        "is_active": info.is_active,
        "token_label": info.token_label,
        "scopes": list(info.scopes),
        "expires_at": info.expires_at,
        "repositories": list(info.repositories) if info.repositories is not None else None,
    }


@router.post(
    "/access-tokens",
    response_model=CreatedAccessToken,
    status_code=201,
    responses=error_responses(400, 401, 403),
)
async def create_token(body: CreateToken, request: Request, svc: Services, who: SignedIn) -> CreatedAccessToken:
    """Create a personal access token for the signed-in user. The secret (``token``) is not stored: this
    response is the only time it is shown."""
    info, secret = await svc.access_tokens.create(
        who,
        label=body.token_label,
        scopes=body.scopes,
        expires_at=body.expires_at,
        repositories=body.repositories,
        source_ip=client_ip(request),
    )
    return CreatedAccessToken(**_token(info), token=secret)


@router.get("/access-tokens", response_model=Paginated[AccessToken], responses=error_responses(401, 403))
async def list_tokens(request: Request, svc: Services, who: SignedIn, page: Paging) -> dict[str, Any]:
    """The signed-in user's tokens, newest first."""
    tokens = await svc.access_tokens.list(who, page)
    return paginated(request, tokens, [AccessToken(**_token(info)) for info in tokens.items])


@router.get("/access-tokens/{uuid}", response_model=AccessToken, responses=error_responses(401, 403, 404))
async def get_token(uuid: TokenId, svc: Services, who: SignedIn) -> AccessToken:
    return AccessToken(**_token(await svc.access_tokens.get(who, uuid)))


@router.patch(
    "/access-tokens/{uuid}",
    response_model=AccessToken,
    responses=error_responses(400, 401, 403, 404),
)
async def update_token(uuid: TokenId, body: UpdateToken, request: Request, svc: Services, who: SignedIn) -> AccessToken:
    """Relabel the token, revoke it (``is_active: false``; it stops working at once) or re-activate it."""
    info = await svc.access_tokens.update(
        who, uuid, label=body.token_label, is_active=body.is_active, source_ip=client_ip(request)
    )
    return AccessToken(**_token(info))


@router.delete(
    "/access-tokens/{uuid}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def delete_token(uuid: TokenId, request: Request, svc: Services, who: SignedIn) -> Response:
    await svc.access_tokens.delete(who, uuid, source_ip=client_ip(request))
    return Response(status_code=204)
