"""A namespace's replication, ``/namespaces/<ns>/replication``, for its owners: its rules (direction, remote,
remote namespace, filters, trigger, whether deletes follow, bandwidth limit; the remote's password is write-only and
never shown back) each with its latest runs, a form to add a rule, "Run now" and removal; and one run,
``/namespaces/<ns>/replication/runs/<id>``, with the result of every artifact of every attempt.

Everything goes through ``ReplicationService``, the service of the Hub API's replication routes, which requires the
namespace's owners (the authorizer: an unknown namespace is a 404, someone else's a 403 — namespaces are public)
and checks a remote against the SSRF guard as the API does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.errors import Invalid, NotFound
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt, field, require_signed_in
from dockyard.http.web.lifecycle_forms import whole_number
from dockyard.http.web.render import page
from dockyard.http.web.security import Visit, finish, form
from dockyard.replication.rules import EVENT, MANUAL, PULL, PUSH, SCHEDULE, RuleInput, RuleView, RunView

RUNS_SHOWN = 5
DIRECTIONS = {PUSH: "push — this namespace → the remote", PULL: "pull — the remote → this namespace"}
TRIGGERS = {
    MANUAL: "by hand (Run now)",
    EVENT: "on pushes and tag deletions (push rules)",
    SCHEDULE: "on a schedule",
}


@dataclass(frozen=True, slots=True)
class RuleRow:
    rule: RuleView
    runs: tuple[RunView, ...]


def _base(namespace: str) -> str:
    return f"/namespaces/{quote(namespace)}/replication"


async def _rules(request: Request, current: Visit) -> list[RuleView]:
    """The namespace's rules, read as its owner (the page's access check)."""
    require_signed_in(current)
    return await services_of(request).replication.list(current.principal, request.path_params["ns"])


async def _render(
    request: Request,
    current: Visit,
    rules: list[RuleView],
    *,
    error: str = "",
    status: int = 200,
    fields: dict[str, str] | None = None,
) -> Response:
    replication = services_of(request).replication
    namespace = request.path_params["ns"]
    rows = [
        RuleRow(rule, tuple(await replication.runs(current.principal, namespace, rule.name, RUNS_SHOWN)))
        for rule in rules
    ]
    return page(
        request,
        current,
        "replication.html",
        status=status,
        title=f"Replication · {namespace}",
        namespace=namespace,
        action=_base(namespace),
        rows=rows,
        directions=DIRECTIONS,
        triggers=TRIGGERS,
        error=error,
        fields=fields or {},
        saved=request.query_params.get("saved", ""),
    )


async def replication_page(request: Request) -> Response:
    current = await visit_of(request)
    return await _render(request, current, await _rules(request, current))


def rule_input(fields: dict[str, str]) -> RuleInput:
    """The add form as the service's ``RuleInput`` (blank optional fields: their defaults)."""
    direction = fields.get("direction", PUSH)
    trigger = fields.get("trigger", MANUAL)
    if direction not in DIRECTIONS:
        raise Invalid("replication", "direction is push or pull")
    if trigger not in TRIGGERS:
        raise Invalid("replication", "trigger is manual, event or schedule")
    minutes = whole_number(fields, "schedule_minutes")
    return RuleInput(
        name=field(fields, "name"),
        direction=direction,
        remote_url=field(fields, "remote_url"),
        remote_namespace=fields.get("remote_namespace", "").strip(),
        username=fields.get("username", "").strip() or None,
        password=fields.get("password", "") or None,
        repository_filter=fields.get("repository_filter", "").strip() or "*",
        tag_filter=fields.get("tag_filter", "").strip() or "*",
        replicate_deletes=fields.get("replicate_deletes") == "on",
        trigger=trigger,
        schedule_seconds=minutes * 60 if minutes is not None else None,
        bandwidth_limit_kib=whole_number(fields, "bandwidth_limit_kib") or None,
        enabled=fields.get("enabled") == "on",
    )


def _change(request: Request, current: Visit, fields: dict[str, str]) -> Callable[[], Awaitable[object]]:
    replication = services_of(request).replication
    actor, ip, namespace = current.principal, client_ip(request), request.path_params["ns"]
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "add": lambda: replication.add(actor, namespace, rule_input(fields), source_ip=ip),
        "remove": lambda: replication.remove(actor, namespace, field(fields, "rule"), source_ip=ip),
        "run": lambda: replication.run(actor, namespace, field(fields, "rule"), source_ip=ip),
    }
    action = fields.get("action", "")
    if action not in calls:

        async def unknown() -> None:
            raise Invalid("request", "unknown action")

        return unknown
    return calls[action]


async def save_replication(request: Request) -> Response:
    current = await visit_of(request)
    fields = await form(request, current)
    await _rules(request, current)  # 404 / 403 before the form is acted on
    failed = await attempt(_change(request, current, fields))
    if failed is not None:
        message, status = failed
        fields.pop("password", None)  # never echoed back into the page
        return await _render(
            request, current, await _rules(request, current), error=message, status=status, fields=fields
        )
    target = f"{_base(request.path_params['ns'])}?saved={quote(fields.get('action', ''))}"
    return finish(RedirectResponse(target, status_code=303), request, current)


async def run_page(request: Request) -> Response:
    current = await visit_of(request)
    require_signed_in(current)
    namespace, raw = request.path_params["ns"], request.path_params["run"]
    if not raw.isdigit() or len(raw) > 18:
        await services_of(request).replication.list(current.principal, namespace)  # 404 / 403 first, as the API
        raise NotFound("replication", "no such replication run")
    run = await services_of(request).replication.run_detail(current.principal, namespace, int(raw))
    return page(
        request,
        current,
        "replication_run.html",
        title=f"Replication run {run.id} · {namespace}",
        namespace=namespace,
        run=run,
    )
