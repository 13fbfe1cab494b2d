"""The pull-through caches, ``/admin/proxies``, for site administrators: every proxy namespace with its upstream,
whether it has credentials (the password is write-only: never shown back), its tag TTL and its status (the
repositories it has cached so far and when one last changed); a form to add one, one per proxy to change it, and
removal (what it cached stays as ordinary repositories).

Everything goes through ``ProxyService``, the service of the Hub API's ``/api/v2/proxies`` routes, which refuses
everyone but site administrators (403). After a change the registry's view of the proxy namespaces is dropped, as
the API does, so the next pull of the namespace is served (or no longer served) from the upstream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt, field, require_signed_in
from dockyard.http.web.lifecycle_forms import whole_number
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form
from dockyard.proxy.manage import DEFAULT_TAG_TTL, ProxyView

ACTION = "/admin/proxies"


@dataclass(frozen=True, slots=True)
class ProxyRow:
    """A proxy and what it has cached: its repositories and when the most recent one last changed."""

    proxy: ProxyView
    repositories: int
    last_updated: datetime | None


async def _rows(request: Request, current: Visit, proxies: list[ProxyView]) -> list[ProxyRow]:
    repositories = services_of(request).repositories
    rows = []
    for proxy in proxies:
        cached = await repositories.list_namespace(
            current.principal, proxy.namespace, PageRequest(1, 1), ordering="-last_updated"
        )
        latest = cached.items[0].last_updated if cached.items else None
        rows.append(ProxyRow(proxy, cached.count, latest))
    return rows


async def _render(
    request: Request,
    current: Visit,
    proxies: list[ProxyView],
    *,
    error: str = "",
    status: int = 200,
    fields: dict[str, str] | None = None,
) -> Response:
    return page(
        request,
        current,
        "proxies.html",
        status=status,
        title="Pull-through caches",
        action=ACTION,
        rows=await _rows(request, current, proxies),
        default_ttl=DEFAULT_TAG_TTL,
        error=error,
        fields=fields or {},
        saved=request.query_params.get("saved", ""),
    )


async def _listed(request: Request, current: Visit) -> list[ProxyView]:
    """The proxies, listed as a site administrator (the page's access check: 403 to everyone else)."""
    require_signed_in(current)
    return await services_of(request).proxies.list(current.principal)


async def proxies_page(request: Request) -> Response:
    current = await visit_of(request)
    return await _render(request, current, await _listed(request, current))


def credentials_of(fields: dict[str, str]) -> tuple[str | None, str | None]:
    """Username and password (both blank: none; the service refuses one without the other)."""
    return fields.get("username", "").strip() or None, fields.get("password", "") or None


def _change(request: Request, current: Visit, fields: dict[str, str]) -> Callable[[], Awaitable[object]]:
    proxies = services_of(request).proxies
    actor, ip, action = current.principal, client_ip(request), fields.get("action", "")

    def ttl() -> int:
        value = whole_number(fields, "tag_ttl_seconds")
        return DEFAULT_TAG_TTL if value is None else value

    async def add() -> None:
        username, password = credentials_of(fields)
        await proxies.add(
            actor,
            field(fields, "namespace"),
            field(fields, "upstream_url"),
            username=username,
            password=password,
            tag_ttl_seconds=ttl(),
            source_ip=ip,
        )

    async def change() -> None:
        username, password = credentials_of(fields)
        await proxies.update(
            actor,
            field(fields, "namespace"),
            field(fields, "upstream_url"),
            username=username,
            password=password,
            clear_credentials=fields.get("clear_credentials") == "on",
            tag_ttl_seconds=whole_number(fields, "tag_ttl_seconds"),
            source_ip=ip,
        )

    async def remove() -> None:
        await proxies.remove(actor, field(fields, "namespace"), source_ip=ip)

    async def unknown() -> None:
        raise Invalid("request", "unknown action")

    return {"add": add, "update": change, "remove": remove}.get(action, unknown)


async def save_proxies(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    await _listed(request, current)  # 403 before the form is read
    failed = await attempt(_change(request, current, fields))
    services.registry.access.forget_proxies()
    if failed is not None:
        message, status = failed
        fields.pop("password", None)  # never echoed back into the page
        listed = await services.proxies.list(current.principal)
        return await _render(request, current, listed, error=message, status=status, fields=fields)
    target = f"{ACTION}?saved={quote(fields.get('action', ''))}"
    return finish(RedirectResponse(target, status_code=303), request, current)
