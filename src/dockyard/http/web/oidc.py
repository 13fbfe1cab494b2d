"""Single sign-on pages: ``/login/oidc`` sends the browser to the OpenID provider, ``/login/oidc/callback``
comes back from it and opens the web session, ``/settings/cli-secret`` shows (and regenerates) a single sign-on
user's CLI secret, the password of ``docker login`` for a user who has none.

The ``state`` of a sign-in under way is also kept in a cookie (``dockyard_oidc_state``: HttpOnly, SameSite=Lax,
path ``/login/oidc``, ten minutes), and the callback must bring back that same value: a sign-in started in
another browser (an attacker's, to sign the victim in as the attacker) is refused. What the provider sends is
verified by ``auth.oidc`` (state, PKCE, the ID token's signature and claims); which user it is, and the team
sync, is ``accounts.oidc_users``; the session is opened as the password sign-in opens it
(``auth.web_sessions``). A provider that cannot be reached is an error page (502) that points to the password
sign-in, which never depends on the provider; a refused sign-in is a 403 page saying why.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.auth.oidc_results import OidcRefused, OidcUnavailable
from dockyard.errors import NotFound, Unauthorized
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import safe_next, services_of, visit_of
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form, set_session
from dockyard.http.web.services import WebServices

STATE_COOKIE = "dockyard_oidc_state"
STATE_PATH = "/login/oidc"
STATE_LIFETIME = 600
CALLBACK = "/login/oidc/callback"


def _redirect_uri(request: Request, services: WebServices) -> str:
    base = services.settings.base_url.rstrip("/") or str(request.base_url).rstrip("/")
    return base + CALLBACK


def _failure(request: Request, current: Visit, status: int, title: str, message: str) -> Response:
    response = page(
        request, current, "oidc_error.html", status=status, title=title, message=message, provider=_provider(request)
    )
    response.delete_cookie(STATE_COOKIE, path=STATE_PATH, httponly=True, samesite="lax")
    return response


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


def _provider(request: Request) -> str:
    return services_of(request).settings.oidc_provider_name


async def start(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    if services.oidc is None:
        raise NotFound("request", "single sign-on is not configured")
    try:
        url, state = await services.oidc.begin(
            safe_next(request.query_params.get("next")), _redirect_uri(request, services)
        )
    except OidcUnavailable as exc:
        return _failure(request, current, 502, "Single sign-on is unavailable", _sentence(exc))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=STATE_LIFETIME,
        path=STATE_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return finish(response, request, current)


async def callback(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    if services.oidc is None:
        raise NotFound("request", "single sign-on is not configured")
    params = request.query_params
    state, expected = params.get("state", ""), request.cookies.get(STATE_COOKIE, "")
    if not state or not expected or not hmac.compare_digest(state.encode(), expected.encode()):
        return _failure(
            request, current, 403, "Sign-in refused", "This sign-in was not started in this browser, or has expired."
        )
    if "error" in params:
        reason = (params.get("error_description") or params["error"])[:300]
        return _failure(request, current, 403, "Sign-in refused", f"The identity provider said: {reason}")
    ip = client_ip(request)
    try:
        signed = await services.oidc.complete(state, params.get("code", ""), _redirect_uri(request, services))
        account_id = await services.oidc_accounts.sign_in(signed, ip)
        session = await services.sessions.sign_in_verified(account_id, ip, "oidc")
    except OidcUnavailable as exc:
        return _failure(request, current, 502, "Single sign-on is unavailable", _sentence(exc))
    except OidcRefused as exc:
        return _failure(request, current, 403, "Sign-in refused", _sentence(exc))
    except Unauthorized:
        return _failure(request, current, 403, "Sign-in refused", "This account cannot sign in.")
    response = RedirectResponse(safe_next(signed.next_path), status_code=303)
    set_session(response, request, services, session.token, services.settings.web_session_lifetime_seconds)
    response.delete_cookie(STATE_COOKIE, path=STATE_PATH, httponly=True, samesite="lax")
    return finish(response, request, current)


def _require_user(current: Visit) -> None:
    if not current.signed_in:
        raise Unauthorized("credentials", "sign in first")


async def cli_secret_page(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    _require_user(current)
    secret = await services.oidc_accounts.cli_secret(current.principal)
    return page(request, current, "cli_secret.html", title="CLI secret", secret=secret, host=request.url.netloc)


async def regenerate_cli_secret(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    await form(request, current)
    _require_user(current)
    await services.oidc_accounts.regenerate_cli_secret(current.principal, client_ip(request))
    return finish(RedirectResponse("/settings/cli-secret", status_code=303), request, current)
