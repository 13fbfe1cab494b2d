"""An organization's robot accounts, ``/orgs/<org>/robots``, for its owners: the robots with their permissions,
a new robot (its short name, a description, one permission per line ``repository level``, an optional expiry
date) whose secret is shown once on the page that answers the form, editing a robot (its permissions, expiry,
disabled or not), and deletion.

Everything goes through ``RobotService``, the Hub API's, which requires the organization's owners (403 to the other
signed-in users — organizations are public —, 404 for an unknown organization).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.accounts.robots import KEEP
from dockyard.authz.permissions import Level
from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import GRANTABLE, attempt, field, level_of, require_signed_in
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form

MAX_LISTED = 100
MAX_PERMISSION_LINES = 100


def expiry_of(value: str) -> datetime | None:
    """A date field (``YYYY-MM-DD``): the robot stops working at 00:00 UTC that day; empty: never."""
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise Invalid("robot", "the expiry must be a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def permissions_of(org: str, text: str) -> dict[str, Level]:
    """``repository level`` per line (``app read``, ``acme/app write``); a short name is the organization's."""
    found: dict[str, Level] = {}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_PERMISSION_LINES:
        raise Invalid("request", f"at most {MAX_PERMISSION_LINES} permissions")
    for line in lines:
        parts = line.split()
        if len(parts) != 2:
            raise Invalid("request", "write one permission per line: a repository and read, write or admin")
        repository, level = parts
        found[repository if "/" in repository else f"{org}/{repository}"] = level_of(level)
    return found


async def _render(
    request: Request,
    current: Visit,
    org: str,
    *,
    error: str = "",
    status: int = 200,
    created: tuple[str, str] | None = None,
    fields: dict[str, str] | None = None,
) -> Response:
    robots = await services_of(request).robots.list_robots(org, PageRequest(1, MAX_LISTED), actor=current.principal)
    return page(
        request,
        current,
        "robots.html",
        status=status,
        title=f"Robots · {org}",
        org=org,
        action=f"/orgs/{quote(org)}/robots",
        robots=robots,
        levels=GRANTABLE,
        created=created,
        now=datetime.now(UTC),
        error=error,
        fields=fields or {},
        saved=request.query_params.get("saved") == "1",
    )


async def robots_page(request: Request) -> Response:
    current = await visit_of(request)
    require_signed_in(current)
    return await _render(request, current, request.path_params["org"])


async def save_robots(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    require_signed_in(current)
    org, actor, ip = request.path_params["org"], current.principal, client_ip(request)
    await services.orgs.get_managed_org(org, actor=actor)  # 404 / 403 before the form is read
    action = fields.get("action", "")
    if action == "create":
        made: list[tuple[str, str]] = []

        async def create() -> None:
            info, secret = await services.robots.create_robot(
                org,
                field(fields, "name"),
                description=fields.get("description", "").strip(),
                permissions=permissions_of(org, fields.get("permissions", "")),
                expires_at=expiry_of(fields.get("expires", "")),
                actor=actor,
                source_ip=ip,
            )
            made.append((info.name, secret))

        failed = await attempt(create)
        if failed is None:
            return await _render(request, current, org, created=made[0])
    elif action == "update":

        async def update() -> None:
            name = field(fields, "name")
            current = await services.robots.get_robot(org, name, actor=actor)
            submitted = expiry_of(fields.get("expires", ""))
            # The form shows the expiry's day: the same day sent back keeps the stored moment (which may be past).
            unchanged = (
                submitted is not None
                and current.expires_at is not None
                and submitted.date() == current.expires_at.date()
            )
            await services.robots.update_robot(
                org,
                name,
                permissions=permissions_of(org, fields.get("permissions", "")),
                expires_at=KEEP if unchanged else submitted,
                disabled=fields.get("disabled") == "1",
                actor=actor,
                source_ip=ip,
            )

        failed = await attempt(update)
    elif action == "delete":
        failed = await attempt(
            lambda: services.robots.delete_robot(org, field(fields, "name"), actor=actor, source_ip=ip)
        )
    else:
        failed = ("unknown action", 400)
    if failed is not None:
        message, status = failed
        return await _render(request, current, org, error=message, status=status, fields=fields)
    return finish(RedirectResponse(f"/orgs/{quote(org)}/robots?saved=1", status_code=303), request, current)
