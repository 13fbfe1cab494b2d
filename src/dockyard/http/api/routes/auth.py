"""``POST /api/v2/auth/token`` (identifier + password or personal access token → API token), the legacy
``POST /api/v2/users/login`` and its second step ``POST /api/v2/users/2fa-login``.

For a user with two-factor sign-in, ``/users/login`` with the right password answers Docker Hub's 401
``{"detail", "login_2fa_token"}``; ``/users/2fa-login`` with that token and a TOTP or recovery code answers the
``{"token"}``. ``/auth/token`` (like ``docker login``) refuses the password of such a user and asks for a personal
access token, as Docker Hub does."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from dockyard.auth.second_factor import SecondFactorNeeded
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


class LoginError(BaseModel):
    """Docker Hub's ``PostUsersLoginErrorResponse`` (sent as problem+json: ``detail`` is the message)."""

    detail: str
    login_2fa_token: str | None = Field(
        default=None, description="the password was right and a second factor is needed: give it to /users/2fa-login"
    )


class SecondFactorLogin(BaseModel):
    login_2fa_token: str = Field(min_length=1, max_length=100)
    code: str = Field(min_length=1, max_length=64, description="a current TOTP code, or an unused recovery code")


SECOND_FACTOR_NEEDED = "two-factor authentication required: send the login_2fa_token and a code to /v2/users/2fa-login"


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
    responses={
        401: {
            "description": "wrong credentials, or a second factor is needed (``login_2fa_token``)",
            "content": {"application/problem+json": {"schema": LoginError.model_json_schema()}},
        },
        429: {"description": "too many failed logins"},
    },
    deprecated=True,
)
async def legacy_login(body: LoginRequest, request: Request, svc: Services) -> LoginResponse | JSONResponse:
    """Legacy login: user name and password (or access token) → ``{"token"}``. A user with two-factor sign-in
    gets 401 with ``login_2fa_token`` (valid 5 minutes, once) for ``/users/2fa-login``."""
    try:
        principal = await _login(svc, request, body.username, body.password)
    except SecondFactorNeeded as needed:
        token = await svc.authenticator.second_factor.challenge(needed, "api")
        body_ = {
            "type": "urn:dockyard:error:second_factor",
            "title": "Unauthorized",
            "status": 401,
            "detail": SECOND_FACTOR_NEEDED,
            "login_2fa_token": token,
        }
        return JSONResponse(
            body_,
            status_code=401,
            media_type="application/problem+json",
            headers={"WWW-Authenticate": 'Bearer realm="dockyard-api"'},
        )
    issued = await svc.tokens.issue_api(principal)
    return LoginResponse(token=issued.token)


@router.post(
    "/users/2fa-login",
    response_model=LoginResponse,
    responses={401: {"description": "wrong, replayed or expired code or token"}, 429: {"description": "throttled"}},
)
async def second_factor_login(body: SecondFactorLogin, request: Request, svc: Services) -> LoginResponse:
    """Second factor authentication: the ``login_2fa_token`` of ``/users/login`` and a TOTP code (or a recovery
    code) → ``{"token"}``. Wrong codes count as failed logins (throttled); a code of a time step already used is
    refused; the token works once."""
    ip = client_ip(request)
    principal = await svc.authenticator.complete_second_factor(body.login_2fa_token, body.code, "api", ip)
    await svc.authenticator.audit_login(principal, ip, "api-2fa")
    issued = await svc.tokens.issue_api(principal)
    return LoginResponse(token=issued.token)
