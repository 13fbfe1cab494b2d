"""``/v2/token``: the token service of Docker's token authentication (the realm of every ``/v2`` challenge).

``GET`` (distribution ``token.md``): Basic credentials (password, personal access token or robot secret) or
none (anonymous), repeated ``scope`` parameters, ``offline_token=true`` + ``client_id`` for a refresh token.
``POST`` (``oauth.md``): a form with ``grant_type=password|refresh_token``, ``client_id``, ``scope``
(space-separated), ``access_type=offline``. The grant is the intersection of what was asked and what the caller
may do; asking for more than allowed is not an error, the token just holds less. A malformed ``scope`` is a 400
``invalid_scope`` on both.

Refresh tokens are stored and checked by ``auth.refresh``: a password change, a robot secret regeneration or
"revoke sessions" ends them (``401 invalid_grant``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from dockyard.auth.scopes import ResourceScope, parse_scopes
from dockyard.authz.principal import ANONYMOUS, OPEN, Principal
from dockyard.errors import DomainError, Invalid, TooLarge, Unauthorized
from dockyard.http.credentials import client_ip, parse_authorization
from dockyard.http.oci.auth import guard, service_name
from dockyard.http.oci.errors import OCIError

_MAX_FORM_BYTES = 64 * 1024


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status,
        {"Cache-Control": "no-store", "Pragma": "no-cache"},
        "application/json",
    )


def _bad_credentials(message: str) -> OCIError:
    return OCIError("UNAUTHORIZED", message, headers={"WWW-Authenticate": 'Basic realm="Dockyard"'})


async def grant(request: Request, caller: Principal, asked: list[ResourceScope]) -> list[ResourceScope]:
    """What of ``asked`` the caller gets: per repository, the asked actions its permission level allows;
    ``registry:catalog:*`` for everyone (the catalog itself filters by visibility)."""
    allowed_on = await guard(request).access.actions(caller, (s.name for s in asked if s.type == "repository"))
    granted: list[ResourceScope] = []
    for scope in asked:
        if scope.type == "repository":
            allowed = allowed_on[scope.name]
            if "*" in scope.actions:
                actions = tuple(sorted(allowed))
            else:
                actions = tuple(a for a in scope.actions if a in allowed)
        elif scope.type == "registry" and scope.name == "catalog":
            actions = tuple(a for a in scope.actions if a == "*")
        else:
            actions = ()
        granted.append(ResourceScope(scope.type, scope.name, actions))
    return granted


async def _login(request: Request, username: str, password: str) -> Principal:
    try:
        return await guard(request).authenticator.login(username, password, client_ip(request))
    except Unauthorized as exc:
        raise _bad_credentials(exc.message) from exc


async def _respond(
    request: Request,
    caller: Principal,
    asked: list[ResourceScope],
    *,
    offline: bool,
    client_id: str,
    oauth: bool,
    refresh_token: str | None = None,
) -> Response:
    g = guard(request)
    service = service_name(request, g.settings)
    granted = await grant(request, caller, asked)
    issued = await g.tokens.issue_registry(caller, service, granted)
    body: dict[str, Any] = {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at.isoformat().replace("+00:00", "Z"),
    }
    if oauth:
        body["scope"] = " ".join(s.render() for s in granted if s.actions)
        body["token_type"] = "Bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    elif offline and caller.is_authenticated:
        body["refresh_token"] = await g.refresh.issue(caller, service, client_id)
        await g.authenticator.audit_login(caller, client_ip(request), "token")
    return _json(body)


async def token_get(request: Request) -> Response:
    g = guard(request)
    params = request.query_params
    try:
        asked = parse_scopes(params.getlist("scope"))
    except DomainError as exc:
        return _oauth_error(400, "invalid_scope", exc.message)
    credentials = parse_authorization(request.headers.get("authorization", ""))
    if g.settings.open:
        caller = OPEN
    elif credentials.scheme == "basic":
        if credentials.username is None:
            raise _bad_credentials("malformed Basic credentials")
        caller = await _login(request, credentials.username, credentials.password)
    elif credentials.scheme == "none":
        caller = ANONYMOUS
    else:
        raise _bad_credentials("the token endpoint takes Basic credentials or none")
    offline = params.get("offline_token", "").lower() == "true"
    return await _respond(request, caller, asked, offline=offline, client_id=params.get("client_id", ""), oauth=False)


async def _form(request: Request) -> dict[str, str]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_FORM_BYTES:
        raise TooLarge("request", f"form is larger than {_MAX_FORM_BYTES} bytes", {"limit": _MAX_FORM_BYTES})
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise TooLarge("request", f"form is larger than {_MAX_FORM_BYTES} bytes", {"limit": _MAX_FORM_BYTES})
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=64)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Invalid("request", "malformed form body") from exc
    return dict(pairs)


def _oauth_error(status: int, error: str, description: str) -> Response:
    """An OAuth2 error body (``error``, ``error_description``) that also carries the registry's ``errors`` list,
    whose code names the problem (``INVALID_SCOPE``, ``INVALID_REQUEST``, …; ``UNAUTHORIZED`` for a 401)."""
    code = "UNAUTHORIZED" if status == 401 else error.upper()
    return _json(
        {
            "error": error,
            "error_description": description,
            "errors": [{"code": code, "message": description, "detail": {}}],
        },
        status,
    )


async def token_post(request: Request) -> Response:
    g = guard(request)
    form = await _form(request)
    grant_type = form.get("grant_type", "")
    client_id = form.get("client_id", "")
    if not client_id:
        return _oauth_error(400, "invalid_request", "client_id is required")
    try:
        asked = parse_scopes([form.get("scope", "")])
    except DomainError as exc:
        return _oauth_error(400, "invalid_scope", exc.message)
    offline = form.get("access_type", "") == "offline"
    kept: str | None = None
    try:
        if g.settings.open:
            caller = OPEN
        elif grant_type == "password":
            caller = await g.authenticator.login(form.get("username", ""), form.get("password", ""), client_ip(request))
        elif grant_type == "refresh_token":
            # The refresh token to keep: the same one, or its successor when rotation is on.
            caller, kept = await g.refresh.redeem(form.get("refresh_token", ""), service_name(request, g.settings))
        else:
            return _oauth_error(400, "unsupported_grant_type", "grant_type must be password or refresh_token")
    except Unauthorized as exc:
        return _oauth_error(401, "invalid_grant", exc.message)
    return await _respond(request, caller, asked, offline=offline, client_id=client_id, oauth=True, refresh_token=kept)
