"""Sign in and sign out (``/login``, ``/logout``): a password check through the same throttle as the token
endpoints, a server-side session row, the signed cookie. A user with two-factor sign-in is asked for a code
(``/login/2fa``, carrying the short-lived ``login_2fa_token`` in the form) before the session opens."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.auth.second_factor import SecondFactorNeeded
from dockyard.errors import Unauthorized
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import safe_next, services_of, visit_of
from dockyard.http.web.render import page
from dockyard.http.web.security import clear_session, finish, form, set_session


async def login_form(request: Request) -> Response:
    current = await visit_of(request)
    target = safe_next(request.query_params.get("next"))
    if current.signed_in:
        return finish(RedirectResponse(target, status_code=303), request, current)
    return page(request, current, "login.html", title="Sign in", next=target, error=None, username="")


async def login(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    target = safe_next(fields.get("next"))
    username = fields.get("username", "")[:255]
    try:
        signed = await services.sessions.sign_in(username, fields.get("password", ""), client_ip(request))
    except SecondFactorNeeded as needed:
        token = await services.sessions.challenge(needed)
        return page(
            request, current, "login_2fa.html", title="Two-factor sign-in", next=target, token=token, error=None
        )
    except Unauthorized:
        return page(
            request,
            current,
            "login.html",
            status=401,
            title="Sign in",
            next=target,
            error="Incorrect user name or password.",
            username=username,
        )
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, services, signed.token, services.settings.web_session_lifetime_seconds)
    return finish(response, request, current)


async def login_second_factor(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    target = safe_next(fields.get("next"))
    token = fields.get("login_2fa_token", "")[:100]
    try:
        signed = await services.sessions.sign_in_second_factor(token, fields.get("code", ""), client_ip(request))
    except Unauthorized as refused:
        if refused.subject == "token":  # expired, used up or unknown: start again with the password
            return page(
                request,
                current,
                "login.html",
                status=401,
                title="Sign in",
                next=target,
                error="The sign-in has expired. Sign in again.",
                username="",
            )
        return page(
            request,
            current,
            "login_2fa.html",
            status=401,
            title="Two-factor sign-in",
            next=target,
            token=token,
            error="Incorrect code.",
        )
    response = RedirectResponse(target, status_code=303)
    set_session(response, request, services, signed.token, services.settings.web_session_lifetime_seconds)
    return finish(response, request, current)


async def logout(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    await form(request, current)
    if current.session_token:
        await services.sessions.sign_out(current.session_token)
    response = RedirectResponse("/", status_code=303)
    clear_session(response, request)
    return finish(response, request, current)
