"""The automated-build status badge, ``/r/<ns>/<repo>/badge.svg[?tag=…]``: a small SVG saying the state of the
repository's latest build (that pushes ``tag``, when given) — ``passing``, ``failing``, ``building``, ``queued``,
``cancelled`` or ``none``. Authorized as a pull: a repository the visitor may not see is the 404 a missing one is
(so a badge of a private repository shows only to who may pull it, as its pages do). Never cached by proxies:
the state changes with every build."""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import Response

from dockyard.http.web.context import services_of, visit_of

_LABELS = {
    "succeeded": ("passing", "#4c1"),
    "failed": ("failing", "#e05d44"),
    "cancelled": ("cancelled", "#9f9f9f"),
    "queued": ("queued", "#dfb317"),
    "cloning": ("building", "#dfb317"),
    "building": ("building", "#dfb317"),
    "pushing": ("building", "#dfb317"),
    "signing": ("building", "#dfb317"),
}
_MAX_TAG = 128


def svg(label: str, message: str, color: str) -> str:
    """A flat two-part badge; widths estimated from the text (7 px per character at 11 px Verdana)."""
    left, right = 6 + 7 * len(label), 6 + 7 * len(message)
    width = left + right
    label, message = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label}: {message}"><title>{label}: {message}</title>'
        f'<rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{color}"/>'
        f'<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14">{label}</text><text x="{left + right / 2}" y="14">{message}</text></g></svg>'
    )


async def build_badge(request: Request) -> Response:
    services = services_of(request)
    visit = await visit_of(request)
    tag = request.query_params.get("tag") or None
    if tag is not None and (len(tag) > _MAX_TAG or any(ord(c) < 32 for c in tag)):
        tag = None
    state = await services.builds.badge_state(
        visit.principal, request.path_params["ns"], request.path_params["repo"], tag
    )
    message, color = _LABELS.get(state or "", ("none", "#9f9f9f"))
    return Response(
        svg("build", message, color),
        media_type="image/svg+xml",
        headers={"Cache-Control": "no-cache, max-age=0"},
    )
