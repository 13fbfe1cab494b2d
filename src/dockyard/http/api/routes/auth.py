"""``POST /api/v2/auth/token`` (identifier + password or personal access token → API token) and the legacy
``POST /api/v2/users/login``."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel, Field

from dockyard.authz.principal import Principal
from dockyard.http.api.deps import Services
from dockyard.http.api.routing import api_router
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["auth"])


class TokenRequest(BaseModel):
    identifier: str = Field(
        min_length=1, max_length=255, description="user name, robot name, or organization name (with its access token)"
    )
    secret: str = Field(
        min_length=1,
        max_length=1024,
        description="password, personal access token, robot secret or organization access token",
    )


class TokenResponse(BaseModel):
    access_token: str


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=1, max_length=1024)


class LoginResponse(BaseModel):
    token: str


async def _login(svc: Services, request: Request, username: str, secret: str) -> Principal:
    principal = await svc.authenticator.login(username, secret, client_ip(request))
    await svc.authenticator.audit_login(principal, client_ip(request), "api")
    return principal


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "too many failed logins"}},
)
async def create_token(body: TokenRequest, request: Request, svc: Services) -> TokenResponse:
    """Exchange credentials for a short-lived API bearer token (Docker Hub's ``/v2/auth/token``)."""
    principal = await _login(svc, request, body.identifier, body.secret)
    issued = await svc.tokens.issue_api(principal)
    return TokenResponse(access_token=issued.token)


@router.post(
    "/users/login",
    response_model=LoginResponse,
    responses={401: {"description": "wrong credentials"}, 429: {"description": "too many failed logins"}},
    deprecated=True,
)
async def legacy_login(body: LoginRequest, request: Request, svc: Services) -> LoginResponse:
    """Legacy login: user name and password (or access token) → ``{"token"}``."""
    principal = await _login(svc, request, body.username, body.password)
    issued = await svc.tokens.issue_api(principal)
    return LoginResponse(token=issued.token)
