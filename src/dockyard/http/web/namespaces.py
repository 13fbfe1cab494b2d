"""A namespace's lifecycle page, ``/namespaces/<ns>/lifecycle``, for its owners (a user for their own namespace,
an organization's owners, site administrators): the quota — usage against the limits with its soft threshold,
and for site administrators the form that sets the limits —, the namespace's retention policy (the default of its
repositories without one of their own: rules added and removed, options), its tag immutability rules (glob or
regular expression, limited to the repositories a glob names; added and removed) and the pull rate limits
(read-only).

The GET asks ``ImmutabilityService.namespace_rules`` first, which requires the namespace's owners (the authorizer:
an unknown namespace is a 404, someone else's a 403 — namespaces are public). Every change is one ``action`` handed
to the service the Hub API calls; setting limits is the quota service's site-administrator check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.errors import Invalid
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt, field, require_signed_in
from dockyard.http.web.lifecycle_forms import (
    RETENTION_ACTIONS,
    TEMPLATE_LABELS,
    UNITS,
    change_retention_rules,
    pull_limits,
    quota_bar,
    storage_limit,
    whole_number,
)
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form
from dockyard.registry.immutability import SYNTAXES, NamespaceRule
from dockyard.repos.immutability import NamespaceRules


async def _render(
    request: Request, current: Visit, rules: NamespaceRules, *, error: str = "", status: int = 200
) -> Response:
    services = services_of(request)
    actor, namespace = current.principal, rules.namespace
    return page(
        request,
        current,
        "lifecycle_namespace.html",
        status=status,
        title=f"Lifecycle · {namespace}",
        namespace=namespace,
        action=f"/namespaces/{quote(namespace)}/lifecycle",
        quota=quota_bar(await services.quotas.show(actor, namespace)),
        policy=await services.retention.get_policy(actor, namespace, None),
        rules=rules.rules,
        syntaxes=SYNTAXES,
        units=UNITS,
        limits=pull_limits(request, current),
        templates=TEMPLATE_LABELS,
        error=error,
        saved=request.query_params.get("saved", ""),
    )


async def _owned(request: Request, current: Visit) -> NamespaceRules:
    """The namespace's immutability rules, read as its owner (the page's access check)."""
    require_signed_in(current)
    return await services_of(request).immutability.namespace_rules(current.principal, request.path_params["ns"])


async def namespace_lifecycle(request: Request) -> Response:
    current = await visit_of(request)
    return await _render(request, current, await _owned(request, current))


def _change(
    request: Request, current: Visit, rules: NamespaceRules, fields: dict[str, str]
) -> Callable[[], Awaitable[object]]:
    services = services_of(request)
    actor, namespace, ip = current.principal, rules.namespace, client_ip(request)
    action = fields.get("action", "")

    async def set_quota() -> None:
        await services.quotas.set(
            actor,
            namespace,
            storage_limit=storage_limit(fields),
            repository_limit=whole_number(fields, "repository_limit"),
            soft_percent=whole_number(fields, "soft_percent"),
            source_ip=ip,
        )

    async def change_rules() -> None:
        current_rules = list(rules.rules)
        if action == "add_immutable":
            syntax = next((s for s in SYNTAXES if s == fields.get("syntax", "glob")), None)
            if syntax is None:
                raise Invalid("request", f"syntax must be one of {', '.join(SYNTAXES)}")
            pattern = field(fields, "pattern")
            current_rules.append(NamespaceRule(pattern, syntax, fields.get("repositories", "").strip() or "*"))
        else:
            index = whole_number(fields, "index", required=True)
            if index is None or index >= len(current_rules):
                raise Invalid("request", "no such rule")
            del current_rules[index]
        await services.immutability.set_namespace_rules(actor, namespace, current_rules, source_ip=ip)

    async def unknown() -> None:
        raise Invalid("request", "unknown action")

    if action == "set_quota":
        return set_quota
    if action in ("add_immutable", "remove_immutable"):
        return change_rules
    if action in RETENTION_ACTIONS:
        return lambda: change_retention_rules(services.retention, actor, namespace, None, fields, source_ip=ip)
    return unknown


async def save_namespace_lifecycle(request: Request) -> Response:
    current = await visit_of(request)
    fields = await form(request, current)
    rules = await _owned(request, current)
    failed = await attempt(_change(request, current, rules, fields))
    if failed is not None:
        message, status = failed
        return await _render(request, current, rules, error=message, status=status)
    action = quote(fields.get("action", ""))
    return finish(
        RedirectResponse(f"/namespaces/{quote(rules.namespace)}/lifecycle?saved={action}", status_code=303),
        request,
        current,
    )
