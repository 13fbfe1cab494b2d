"""A repository's webhooks page (``/r/<ns>/<repo>/webhooks``): its webhooks with their recent deliveries, a form
to add one (its signing secret shown once, on the page that answers the form), and for each webhook a test
delivery and, for each delivery, a redelivery.

Everything goes through ``WebhookService`` — the service the Hub API's webhook routes call, which decides who may
manage a repository's webhooks (its administrators; a repository the visitor may not see is a 404). Every form
carries the CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid, NotFound, Unauthorized
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.http.web.security import Visit, finish, form
from dockyard.repos.access import full_name
from dockyard.webhooks.dispatch import public_base_url
from dockyard.webhooks.event_table import PAYLOAD_FORMAT_TABLE
from dockyard.webhooks.snapshots import DeliveryView, WebhookView

DELIVERIES_SHOWN = 10
PAYLOAD_FORMATS = tuple(f.name for f in PAYLOAD_FORMAT_TABLE if f.selectable)


@dataclass(frozen=True, slots=True)
class HookRow:
    hook: WebhookView
    deliveries: tuple[DeliveryView, ...]
    delivery_count: int


def _names(request: Request) -> tuple[str, str]:
    return request.path_params["ns"], request.path_params["repo"]


def _require_user(current: Visit) -> None:
    if not current.signed_in:
        raise Unauthorized("credentials", "sign in first")


async def _render(
    request: Request, current: Visit, *, created: tuple[str, str] | None = None, error: str = "", status: int = 200
) -> Response:
    services = services_of(request)
    namespace, name = _names(request)
    view = await services.repositories.get(current.principal, namespace, name)
    hooks = await services.webhooks.list(current.principal, namespace, full_name(namespace, name), PageRequest(1, 100))
    rows = []
    for hook in hooks.items:
        deliveries = await services.webhooks.deliveries(current.principal, hook.uuid, PageRequest(1, DELIVERIES_SHOWN))
        rows.append(HookRow(hook, tuple(deliveries.items), deliveries.count))
    return page(
        request,
        current,
        "webhooks.html",
        status=status,
        title=f"Webhooks · {view.full_name}",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view),
        tab="webhooks",
        rows=rows,
        formats=PAYLOAD_FORMATS,
        created=created,
        error=error,
    )


async def webhooks_page(request: Request) -> Response:
    current = await visit_of(request)
    _require_user(current)
    return await _render(request, current)


async def add_webhook(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    _require_user(current)
    namespace, name = _names(request)
    try:
        hook, secret = await services.webhooks.create(
            current.principal,
            namespace,
            full_name(namespace, name),
            name=fields.get("name", "").strip(),
            url=fields.get("url", "").strip(),
            payload_format=fields.get("payload_format", "dockerhub"),
            source_ip=client_ip(request),
        )
    except Invalid as exc:
        return await _render(request, current, error=str(exc), status=400)
    return await _render(request, current, created=(hook.name, secret))


def _back(request: Request, current: Visit) -> Response:
    namespace, name = _names(request)
    return finish(RedirectResponse(f"/r/{namespace}/{name}/webhooks", status_code=303), request, current)


async def _own_hook(request: Request, current: Visit) -> str:
    """The webhook named in the path, which must be one of this repository's (else a 404, as any unknown one)."""
    services = services_of(request)
    namespace, name = _names(request)
    hook = await services.webhooks.get(current.principal, request.path_params["uuid"])
    if hook.repository != full_name(namespace, name):
        raise NotFound("webhook", "webhook not found")
    return hook.uuid


async def test_webhook(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    await form(request, current)
    _require_user(current)
    uuid = await _own_hook(request, current)
    await services.webhooks.send_test(
        current.principal, uuid, base_url=public_base_url(services.settings), source_ip=client_ip(request)
    )
    return _back(request, current)


async def redeliver(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    await form(request, current)
    _require_user(current)
    uuid = await _own_hook(request, current)
    await services.webhooks.redeliver(
        current.principal, uuid, request.path_params["delivery"], source_ip=client_ip(request)
    )
    return _back(request, current)
