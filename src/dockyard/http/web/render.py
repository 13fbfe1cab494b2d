"""Rendering: the Jinja2 environment (autoescaping everywhere), its filters, Markdown READMEs made safe, and the
one function that turns a template and a visit into a response.

READMEs are rendered by markdown-it-py with raw HTML off, then cleaned by nh3 (the Rust ammonia sanitiser): only
harmless tags and attributes, ``http``/``https``/``mailto`` links, ``rel="nofollow noopener noreferrer"``. Every
other string reaches the page through Jinja2's autoescaping, never ``|safe``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from dockyard import __version__
from dockyard.http.web.security import CSRF_FIELD, Visit, finish

TEMPLATES = Path(__file__).parent / "templates"
MAX_README = 100_000
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
_URL_SCHEMES = {"http", "https", "mailto"}


def readme_html(text: str) -> Markup:
    """A README as safe HTML."""
    if not text:
        return Markup("")
    html = _MARKDOWN.render(text[:MAX_README])
    cleaned = nh3.clean(html, url_schemes=_URL_SCHEMES, link_rel="nofollow noopener noreferrer")
    return Markup(cleaned)  # noqa: S704  # sanitised by nh3 just above


def human_size(value: int | None) -> str:
    if value is None:
        return "—"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{value} B"


def when(value: datetime | None) -> str:
    """A timestamp as "3 hours ago"."""
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - value).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def iso(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""


def short_digest(value: str | None) -> str:
    if not value:
        return ""
    algorithm, _, hexpart = value.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


def anchor_hex(value: str | None) -> str:
    """The first 12 hex digits of a digest: the stable part of a page anchor (``#layer-<image>-<layer>``)."""
    return (value or "").partition(":")[2][:12]


def sso_name(request: Request) -> str | None:
    """The name of the single sign-on provider for the sign-in page's button, or None when there is none."""
    settings = request.app.state.web.settings
    return str(settings.oidc_provider_name) if settings.oidc_enabled else None


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(size=human_size, ago=when, iso=iso, short=short_digest, anchor=anchor_hex)
    env.globals.update(version=__version__, csrf_field=CSRF_FIELD, readme=readme_html, sso_name=sso_name)
    return env


ENVIRONMENT = _environment()


def page(request: Request, current: Visit, template: str, status: int = 200, **context: Any) -> Response:
    html = ENVIRONMENT.get_template(template).render(
        request=request, visit=current, user=current.principal if current.signed_in else None, **context
    )
    return finish(HTMLResponse(html, status_code=status), request, current)
