"""The browser's side of sign-in and form safety: the signed session cookie, the CSRF token, the
Content-Security-Policy of every page, and the principal a request acts as.

- Session cookie ``dockyard_session``: ``<token>.<HMAC-SHA256 of it>`` under a key derived from the server
  secret; HttpOnly, SameSite=Lax, Secure when the request came over https, Path=/. The token itself is checked
  against its server-side row (``dockyard.auth.web_sessions``) on every request.
- CSRF: a random ``dockyard_csrf`` cookie (HttpOnly, SameSite=Lax) is set on the first page; every form carries
  HMAC(key, cookie value + session token) and a POST whose field does not match is refused (403) before anything
  is done. The token changes when the session does (sign-in, sign-out).
- CSP: scripts, styles and fonts from this origin only (no inline script or style), images from this origin,
  data: and https: (README badges), forms posting to this origin, never framed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from dockyard.authz.principal import ANONYMOUS, OPEN, Principal
from dockyard.errors import Denied, TooLarge
from dockyard.http.web.services import WebServices

SESSION_COOKIE = "dockyard_session"
CSRF_COOKIE = "dockyard_csrf"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 64 * 1024
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _key(services: WebServices) -> bytes:
    return hashlib.sha256(b"dockyard web cookies\0" + services.settings.secret_key.encode()).digest()


def _mac(key: bytes, text: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, text.encode(), hashlib.sha256).digest()).decode().rstrip("=")


def sign(services: WebServices, token: str) -> str:
    return f"{token}.{_mac(_key(services), 'session:' + token)}"


def unsign(services: WebServices, value: str) -> str | None:
    token, _, mac = value.rpartition(".")
    if not token or not hmac.compare_digest(mac, _mac(_key(services), "session:" + token)):
        return None
    return token


@dataclass
class Visit:
    """One request as the pages see it: who acts, the CSRF token its forms carry, cookies to set."""

    principal: Principal
    session_token: str
    csrf_seed: str
    new_csrf_seed: bool
    csrf_token: str

    @property
    def signed_in(self) -> bool:
        return self.principal.is_authenticated


def csrf_token(services: WebServices, seed: str, session_token: str) -> str:
    return _mac(_key(services), f"csrf:{seed}:{session_token}")


async def visit(request: Request, services: WebServices) -> Visit:
    """Who the request acts as (a live session's user, else anonymous; everyone on an --open server)."""
    principal = ANONYMOUS
    token = ""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if services.settings.open:
        principal = OPEN
    elif cookie:
        unsigned = unsign(services, cookie)
        if unsigned is not None:
            found = await services.sessions.resolve(unsigned)
            if found is not None:
                principal, token = found, unsigned
    seed = request.cookies.get(CSRF_COOKIE, "")
    fresh = not (16 <= len(seed) <= 100 and seed.isascii())
    if fresh:
        seed = secrets.token_urlsafe(24)
    return Visit(principal, token, seed, fresh, csrf_token(services, seed, token))


async def form(request: Request, current: Visit, *, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The POSTed form (application/x-www-form-urlencoded), after checking its CSRF token. Raises
    ``Denied("request")`` when the token is missing or wrong, ``TooLarge("request")`` past ``limit`` bytes."""
    body = await request.body()
    if len(body) > limit:
        raise TooLarge("request", "form too large")
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    sent = fields.get(CSRF_FIELD, "")
    if current.new_csrf_seed or not sent or not hmac.compare_digest(sent, current.csrf_token):
        raise Denied("request", "the form's security token is missing or out of date; reload the page and try again")
    return fields


def finish(response: Response, request: Request, current: Visit) -> Response:
    """Page headers, and the CSRF cookie when this visit made one."""
    for name, value in PAGE_HEADERS.items():
        response.headers[name] = value
    if current.new_csrf_seed:
        response.set_cookie(
            CSRF_COOKIE, current.csrf_seed, httponly=True, samesite="lax", secure=request.url.scheme == "https"
        )
    return response


def set_session(response: Response, request: Request, services: WebServices, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        sign(services, token),
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=request.url.scheme == "https")
