"""Per-request helpers shared by the page modules: the services bundle and the visit (computed once)."""

from __future__ import annotations

from starlette.requests import Request

from dockyard.http.web.security import Visit, visit
from dockyard.http.web.services import WebServices


def services_of(request: Request) -> WebServices:
    value: WebServices = request.app.state.web
    return value


async def visit_of(request: Request) -> Visit:
    """Who the request acts as; resolved on first use and kept for the rest of the request."""
    current: Visit | None = getattr(request.state, "web_visit", None)
    if current is None:
        current = await visit(request, services_of(request))
        request.state.web_visit = current
    return current


def safe_next(target: str | None) -> str:
    """A same-site path to go to after signing in; anything else (``//host``, ``https://…``) goes home."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target[:2000]
