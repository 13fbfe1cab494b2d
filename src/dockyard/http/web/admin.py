"""The site-admin area's users page, ``/admin/users``, for site administrators: the users (search by name or
e-mail, a page at a time), a new user, and per user disable/enable, make or unmake a site administrator, reset
two-factor sign-in and delete — each a call of the service the Hub API and the CLI use (``UserService``,
``TwoFactorService``), which authorizes it and writes the audit entry.

Every ``/admin/…`` page answers 404 to signed-in users who are not site administrators (what they may not see is
not there for them, as everywhere in the hub) and sends visitors who are not signed in to the sign-in page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.authz.principal import Principal
from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid, NotFound
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt, field, require_signed_in
from dockyard.http.web.paging import page_number, pager
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form
from dockyard.http.web.services import WebServices

PAGE_SIZE = 25
MAX_QUERY = 100
ADMIN_PAGES = (
    ("users", "/admin/users", "Users"),
    ("storage", "/admin/storage", "Storage"),
    ("jobs", "/admin/jobs", "Jobs"),
    ("gc", "/admin/gc", "Garbage collection"),
    ("audit", "/admin/audit", "Audit log"),
)


def require_site_admin(current: Visit) -> None:
    """Visitors sign in first; any other user who is not a site administrator finds nothing here."""
    require_signed_in(current)
    if not current.principal.superuser:
        raise NotFound("request", "no such page")


async def _render(request: Request, current: Visit, *, error: str = "", status: int = 200) -> Response:
    services = services_of(request)
    query = request.query_params.get("q", "").strip()[:MAX_QUERY]
    users = await services.users.list_users(
        PageRequest(page_number(request), PAGE_SIZE), actor=current.principal, query=query
    )
    return page(
        request,
        current,
        "admin_users.html",
        status=status,
        title="Users · Site administration",
        admin_pages=ADMIN_PAGES,
        admin_tab="users",
        users=users,
        pages=pager(request, users),
        q=query,
        error=error,
        done=request.query_params.get("done", "")[:40],
    )


async def users_page(request: Request) -> Response:
    current = await visit_of(request)
    require_site_admin(current)
    return await _render(request, current)


def _actions(
    services: WebServices, fields: dict[str, str], actor: Principal, ip: str
) -> dict[str, Callable[[], Awaitable[object]]]:
    def name() -> str:
        return field(fields, "username")

    async def create() -> None:
        await services.users.create_user(
            field(fields, "username"),
            fields.get("email", "").strip() or None,
            fields.get("password", ""),
            is_admin=fields.get("is_admin") == "on",
            actor=actor,
            source_ip=ip,
        )

    async def delete() -> None:
        if fields.get("confirm") != "on":
            raise Invalid("request", "tick the box to confirm the deletion")
        await services.users.delete_user(name(), actor=actor, source_ip=ip)

    return {
        "create": create,
        "disable": lambda: services.users.set_disabled(name(), True, actor=actor, source_ip=ip),
        "enable": lambda: services.users.set_disabled(name(), False, actor=actor, source_ip=ip),
        "make_admin": lambda: services.users.set_admin(name(), True, actor=actor, source_ip=ip),
        "unmake_admin": lambda: services.users.set_admin(name(), False, actor=actor, source_ip=ip),
        "reset_2fa": lambda: services.two_factor.reset(name(), actor=actor, source_ip=ip),
        "delete": delete,
    }


async def save_users(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    require_site_admin(current)
    action = fields.get("action", "")
    call = _actions(services, fields, current.principal, client_ip(request)).get(action)
    failed = await attempt(call) if call is not None else ("unknown action", 400)
    if failed is not None:
        message, status = failed
        return await _render(request, current, error=message, status=status)
    back = {"done": action, **({"q": fields["q"][:MAX_QUERY]} if fields.get("q") else {})}
    return finish(RedirectResponse(f"/admin/users?{urlencode(back)}", status_code=303), request, current)
