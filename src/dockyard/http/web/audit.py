"""The audit log pages: ``/namespaces/<ns>/audit`` (a namespace's entries, for its owners — the user, an
organization's owners, site administrators) and ``/admin/audit`` (every namespace's, for site administrators).
Newest first, a page at a time, filtered by action and actor (and, site-wide, by namespace).

Both read through ``AuditLogService`` — the Hub API's ``/v2/auditlogs`` — which decides: the namespace's log is the
authorizer's owner check (403 to other signed-in users, 404 for an unknown namespace), the site-wide one the
service's site-administrator check; the page, like the whole site-admin area, is a 404 to other signed-in users.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.core.paging import PageRequest
from dockyard.events.audit import ACTION_DESCRIPTIONS
from dockyard.http.web.admin import require_site_admin
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import require_signed_in
from dockyard.http.web.paging import page_number, pager
from dockyard.http.web.render import page

PAGE_SIZE = 25
MAX_FILTER = 200


def _filters(request: Request, *names: str) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip()[:MAX_FILTER] for name in names}


def _context(request: Request, entries: Any, filters: dict[str, str]) -> dict[str, Any]:
    return {
        "entries": entries,
        "pages": pager(request, entries),
        "filters": filters,
        "actions": sorted(ACTION_DESCRIPTIONS),
    }


async def namespace_audit(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    require_signed_in(current)
    namespace = request.path_params["ns"]
    filters = _filters(request, "action", "actor")
    entries = await services.audit.list(
        current.principal,
        namespace,
        action=filters["action"] or None,
        actor_name=filters["actor"] or None,
        page=PageRequest(page_number(request), PAGE_SIZE),
    )
    return page(
        request,
        current,
        "audit.html",
        title=f"Audit log · {namespace}",
        namespace=namespace,
        **_context(request, entries, filters),
    )


async def site_audit(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    require_site_admin(current)  # like every page of the site-admin area: nothing there for other users
    filters = _filters(request, "namespace", "action", "actor")
    entries = await services.audit.list_everything(
        current.principal,
        namespace=filters["namespace"] or None,
        action=filters["action"] or None,
        actor_name=filters["actor"] or None,
        page=PageRequest(page_number(request), PAGE_SIZE),
    )
    return page(
        request, current, "audit.html", title="Audit log", namespace=None, **_context(request, entries, filters)
    )
