"""The signed-in user's two-factor sign-in page (``/settings/security``): its state, enrolment (the QR code and
the secret, on the page that answers the form, never in a URL), confirmation with a first code (the recovery
codes, shown on that one response), new recovery codes, and turning it off with a code.

It calls ``TwoFactorService`` — the service the Hub API calls —, which decides who may do what. Every form carries
the CSRF token (``security.form``).
"""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import Response

from dockyard.accounts.two_factor import Enrolment
from dockyard.errors import Conflict, Invalid, Unauthorized
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, form


def _require_user(current: Visit) -> str:
    if not current.signed_in:
        raise Unauthorized("credentials", "sign in first")
    return current.principal.name


async def _render(
    request: Request,
    current: Visit,
    *,
    enrolment: Enrolment | None = None,
    recovery_codes: list[str] | None = None,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    services = services_of(request)
    state = await services.two_factor.status(current.principal.name, actor=current.principal)
    qr = (
        "data:image/svg+xml;base64," + base64.b64encode(enrolment.qr_svg.encode()).decode()
        if enrolment is not None
        else None
    )
    return page(
        request,
        current,
        "two_factor.html",
        status=status,
        title="Two-factor sign-in",
        state=state,
        enrolment=enrolment,
        qr=qr,
        recovery_codes=recovery_codes,
        error=error,
        notice=notice,
    )


async def security_page(request: Request) -> Response:
    current = await visit_of(request)
    _require_user(current)
    return await _render(request, current)


async def enrol(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    await form(request, current)
    name = _require_user(current)
    try:
        enrolment = await services.two_factor.enrol(name, actor=current.principal)
    except Conflict as exc:
        return await _render(request, current, error=exc.message, status=409)
    return await _render(request, current, enrolment=enrolment)


async def confirm(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    name = _require_user(current)
    try:
        codes = await services.two_factor.confirm(
            name, fields.get("code", "")[:64], actor=current.principal, source_ip=client_ip(request)
        )
    except (Invalid, Conflict) as exc:
        return await _render(request, current, error=f"{exc.message}. Start again.", status=400)
    return await _render(request, current, recovery_codes=codes, notice="Two-factor sign-in is on.")


async def renew_codes(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    name = _require_user(current)
    try:
        codes = await services.two_factor.renew_recovery_codes(
            name, fields.get("code", "")[:64], actor=current.principal, source_ip=client_ip(request)
        )
    except (Invalid, Conflict) as exc:
        return await _render(request, current, error=exc.message, status=400)
    return await _render(request, current, recovery_codes=codes, notice="New recovery codes made.")


async def disable(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    name = _require_user(current)
    try:
        await services.two_factor.disable(
            name, fields.get("code", "")[:64], actor=current.principal, source_ip=client_ip(request)
        )
    except (Invalid, Conflict) as exc:
        return await _render(request, current, error=exc.message, status=400)
    return await _render(request, current, notice="Two-factor sign-in is off.")
