"""A user's two-factor sign-in (TOTP) under ``/api/v2/users/{username}/2fa``: status, enrolment (secret,
``otpauth://`` URI and QR code as SVG, shown once), confirmation (recovery codes, shown once), new recovery codes,
turning it off, and a site administrator's reset. The login side (``/users/login`` → ``login_2fa_token`` →
``/users/2fa-login``) is in ``routes/auth.py``."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request, Response
from pydantic import BaseModel, Field

from dockyard.http.api.deps import Services, SignedIn
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import AccountPath
from dockyard.http.api.schemas.common import NO_CONTENT, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["two-factor"])


class TwoFactorState(BaseModel):
    enabled: bool = Field(description="a password sign-in needs a second factor")
    pending: bool = Field(description="an enrolment waits for its first code")
    enabled_at: datetime | None
    recovery_codes_left: int


class TwoFactorEnrolment(BaseModel):
    secret: str = Field(description="the base32 TOTP secret (RFC 6238: SHA-1, 6 digits, 30 seconds); shown once")
    otpauth_uri: str = Field(description="the secret as an otpauth:// URI for authenticator apps")
    qr_svg: str = Field(description="the URI's QR code, an SVG document")


class TwoFactorCode(BaseModel):
    code: str = Field(min_length=1, max_length=64, description="a current TOTP code, or a recovery code")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="single-use recovery codes; shown once")


@router.get("/users/{username}/2fa", response_model=TwoFactorState, responses=error_responses(401, 403, 404))
async def get_two_factor(username: AccountPath, svc: Services, who: SignedIn) -> TwoFactorState:
    """Whether the user has two-factor sign-in (the user, or a site administrator)."""
    state = await svc.two_factor.status(username, actor=who)
    return TwoFactorState(
        enabled=state.enabled,
        pending=state.pending,
        enabled_at=state.enabled_at,
        recovery_codes_left=state.recovery_codes_left,
    )


@router.post(
    "/users/{username}/2fa/enrolment",
    status_code=201,
    response_model=TwoFactorEnrolment,
    responses=error_responses(401, 403, 404, 409),
)
async def enrol(username: AccountPath, svc: Services, who: SignedIn) -> TwoFactorEnrolment:
    """Start setting up two-factor sign-in (the user, signed in with a password): a new TOTP secret, stored
    sealed with the server secret, that takes effect once confirmed with a code. Starting again replaces a
    pending enrolment; 409 while two-factor sign-in is on."""
    enrolment = await svc.two_factor.enrol(username, actor=who)
    return TwoFactorEnrolment(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg)


@router.post(
    "/users/{username}/2fa/confirm",
    response_model=RecoveryCodes,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def confirm(
    username: AccountPath, body: TwoFactorCode, request: Request, svc: Services, who: SignedIn
) -> RecoveryCodes:
    """Turn two-factor sign-in on with a first valid TOTP code of the pending enrolment; answers the recovery
    codes, which are shown only this once."""
    codes = await svc.two_factor.confirm(username, body.code, actor=who, source_ip=client_ip(request))
    return RecoveryCodes(recovery_codes=codes)


@router.post(
    "/users/{username}/2fa/recovery-codes",
    response_model=RecoveryCodes,
    responses=error_responses(400, 401, 403, 404, 409, 429),
)
async def renew_recovery_codes(
    username: AccountPath, body: TwoFactorCode, request: Request, svc: Services, who: SignedIn
) -> RecoveryCodes:
    """New recovery codes for a current code (the old ones stop working). Codes are throttled as logins are."""
    codes = await svc.two_factor.renew_recovery_codes(username, body.code, actor=who, source_ip=client_ip(request))
    return RecoveryCodes(recovery_codes=codes)


@router.post(
    "/users/{username}/2fa/disable",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(400, 401, 403, 404, 409, 429)},
)
async def disable(
    username: AccountPath, body: TwoFactorCode, request: Request, svc: Services, who: SignedIn
) -> Response:
    """Turn two-factor sign-in off (the user, signed in with a password, with a current TOTP or recovery code)."""
    await svc.two_factor.disable(username, body.code, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)


@router.delete(
    "/users/{username}/2fa",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def reset(username: AccountPath, request: Request, svc: Services, who: SignedIn) -> Response:
    """Reset the user's second factor (site administrators; audited ``user.2fa.reset``): for a user who lost both
    the device and the recovery codes. The user signs in with the password alone until enrolling again."""
    await svc.two_factor.reset(username, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)
