"""Self sign-up, ``/signup``, when the ``allow_signup`` setting is on (off, the default: 404, as for any page that is
not there). A user name, an e-mail address and a password make a new user through ``UserService.sign_up`` — the
validation and password policy of the Hub API's user creation, audited (``account.create``, ``via: signup``) —;
each attempt first counts as a password attempt of the login throttle (``WebSessions.count_attempt``: one address
cannot make accounts faster than it may guess passwords), and the new user is then signed in as the sign-in form
does it."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form, set_session

MAX_FIELD = 320


def _require_open(request: Request) -> None:
    if not services_of(request).settings.allow_signup:
        raise NotFound("request", "no such page")


def _form(request: Request, current: Visit, *, error: str = "", status: int = 200, **values: str) -> Response:
    return page(
        request,
        current,
        "signup.html",
        status=status,
        title="Sign up",
        error=error,
        username=values.get("username", ""),
        email=values.get("email", ""),
    )


async def signup_form(request: Request) -> Response:
    _require_open(request)
    current = await visit_of(request)
    if current.signed_in:
        return finish(RedirectResponse("/", status_code=303), request, current)
    return _form(request, current)


async def sign_up(request: Request) -> Response:
    _require_open(request)
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    username = fields.get("username", "").strip()[:MAX_FIELD]
    email = fields.get("email", "").strip()[:MAX_FIELD]
    password = fields.get("password", "")
    ip = client_ip(request)
    await services.sessions.count_attempt(username, ip)  # RateLimited: the 429 page
    try:
        created = await services.users.sign_up(username, email, password, source_ip=ip)
    except (Invalid, Conflict) as refused:
        status = 409 if isinstance(refused, Conflict) else 400
        return _form(request, current, error=str(refused), status=status, username=username, email=email)
    signed = await services.sessions.sign_in(created.name, password, ip)
    response = RedirectResponse(f"/u/{quote(created.name)}", status_code=303)
    set_session(response, request, services, signed.token, services.settings.web_session_lifetime_seconds)
    return finish(response, request, current)
