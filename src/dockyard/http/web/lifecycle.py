"""A repository's lifecycle page, ``/r/<ns>/<repo>/lifecycle``, for its administrators: the namespace's quota
(usage against the limits, when the visitor may see it), the retention policy (its rules — add, remove —, its
options, a dry run listing the tags it would delete, a real run, the history of runs with counts and bytes freed),
Docker Hub's tag immutability (on/off and its regular expressions — add, remove) and the pull rate limits
(read-only).

The GET needs admin on the repository (``access.admin_view``: 404 to who may not see it, 403 to its other
readers); every change goes to the service the Hub API calls (``RetentionService``, ``ImmutabilityService``),
which asks the authorizer again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.errors import Denied, Invalid
from dockyard.http.credentials import client_ip
from dockyard.http.web.access import admin_view
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt, field
from dockyard.http.web.lifecycle_forms import (
    RETENTION_ACTIONS,
    TEMPLATE_LABELS,
    change_retention_rules,
    pull_limits,
    quota_bar,
    whole_number,
)
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.http.web.security import Visit, finish, form
from dockyard.repos.retention import RunView
from dockyard.repos.snapshots import ImmutableTagsSettings, RepositoryView

HISTORY_SHOWN = 20


async def _render(
    request: Request,
    current: Visit,
    view: RepositoryView,
    *,
    error: str = "",
    status: int = 200,
    dry_run: RunView | None = None,
) -> Response:
    services = services_of(request)
    actor, namespace, name = current.principal, view.namespace, view.name
    try:  # the namespace's members see its quota; a collaborator from outside it does not
        quota = quota_bar(await services.quotas.show(actor, namespace))
    except Denied:
        quota = None
    return page(
        request,
        current,
        "lifecycle_repo.html",
        status=status,
        title=f"Lifecycle · {view.full_name}",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view),
        tab="lifecycle",
        action=f"/r/{quote(namespace)}/{quote(name)}/lifecycle",
        quota=quota,
        policy=await services.retention.get_policy(actor, namespace, name),
        history=await services.retention.history(actor, namespace, name, HISTORY_SHOWN),
        immutable=view.immutable_tags_settings,
        limits=pull_limits(request, current),
        templates=TEMPLATE_LABELS,
        dry_run=dry_run,
        error=error,
        saved=request.query_params.get("saved", ""),
    )


async def repo_lifecycle(request: Request) -> Response:
    current = await visit_of(request)
    return await _render(request, current, await admin_view(request, current))


def _immutability(
    request: Request, current: Visit, view: RepositoryView, fields: dict[str, str]
) -> Callable[[], Awaitable[object]]:
    """Docker Hub's ``immutable_tags_settings`` changed by one form: switched on/off, a rule added or removed."""
    services = services_of(request)
    settings = view.immutable_tags_settings
    action = fields.get("action", "")

    async def store() -> None:
        enabled, rules = settings.enabled, list(settings.rules)
        if action == "immutable_switch":
            enabled = fields.get("enabled") == "on"
        elif action == "add_immutable":
            rules.append(field(fields, "regex"))
        else:
            index = whole_number(fields, "index", required=True)
            if index is None or index >= len(rules):
                raise Invalid("request", "no such rule")
            del rules[index]
        await services.immutability.update(
            current.principal,
            view.namespace,
            view.name,
            ImmutableTagsSettings(enabled, tuple(rules)),
            source_ip=client_ip(request),
        )

    return store


async def save_repo_lifecycle(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    view = await admin_view(request, current)
    actor, action = current.principal, fields.get("action", "")
    if action == "dry_run":
        result: list[RunView] = []

        async def dry() -> None:
            result.append(await services.retention.run(actor, view.namespace, view.name, dry_run=True))

        failed = await attempt(dry)
        if failed is None:
            return await _render(request, current, view, dry_run=result[0])
    elif action == "run_now":
        failed = await attempt(lambda: services.retention.run(actor, view.namespace, view.name, dry_run=False))
    elif action in RETENTION_ACTIONS:
        failed = await attempt(
            lambda: change_retention_rules(
                services.retention, actor, view.namespace, view.name, fields, source_ip=client_ip(request)
            )
        )
    elif action in ("immutable_switch", "add_immutable", "remove_immutable"):
        failed = await attempt(_immutability(request, current, view, fields))
    else:
        failed = ("unknown action", 400)
    if failed is not None:
        message, status = failed
        return await _render(request, current, view, error=message, status=status)
    target = f"/r/{quote(view.namespace)}/{quote(view.name)}/lifecycle?saved={quote(action)}"
    return finish(RedirectResponse(target, status_code=303), request, current)
