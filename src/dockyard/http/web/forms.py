"""What the management pages share: the signed-in requirement, one POSTed form's ``action`` dispatched to a
service call, and a refused form shown again with the service's message (400 for bad input, 403 refused, 404
unknown, 409 conflict) instead of an error page — the service decides, the page only reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from dockyard.authz.permissions import Level
from dockyard.errors import Conflict, Denied, DomainError, Invalid, NotFound, Unauthorized
from dockyard.http.web.security import Visit

FORM_ERRORS: dict[type[DomainError], int] = {Invalid: 400, Conflict: 409, NotFound: 404, Denied: 403}
GRANTABLE = ("read", "write", "admin")


def require_signed_in(current: Visit) -> None:
    if not current.signed_in:
        raise Unauthorized("credentials", "sign in first")


def level_of(value: str) -> Level:
    if value not in GRANTABLE:
        raise Invalid("permission", f"the permission must be one of {', '.join(GRANTABLE)}")
    return Level.parse(value)


def field(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise Invalid("request", f"{name.replace('_', ' ')} is required")
    return value


async def attempt(call: Callable[[], Awaitable[object]]) -> tuple[str, int] | None:
    """Run one service call; None when it succeeded, else (its message, the status to show it with). Refusals
    that concern the whole page (``Unauthorized``, a hidden resource at the page level) are left to propagate by
    the caller checking access before the form is read."""
    try:
        await call()
    except (Invalid, Conflict, NotFound, Denied) as exc:
        return str(exc), next(status for kind, status in FORM_ERRORS.items() if isinstance(exc, kind))
    return None
