"""The forms of a repository's Builds page that change its automated builds, ``POST /r/<ns>/<repo>/builds/settings``
(its administrators): link a git remote (URL, HTTPS username and token or, for SSH, the known_hosts lines, polling
interval) — the inbound webhook secret and the trigger URL are shown on the page that answers, this once —,
unlink, add a build rule (Docker Hub's model: branch or tag, a name or ``/regex/``, a tag template with
``{sourceref}`` and ``{\\1}``…, Dockerfile path, context, build args, switches), change one (its build args stay as
stored: secret values are never shown to edit) and remove one.

The page's access check is ``access.admin_view`` (404 to who may not see the repository, 403 to its other readers);
every change goes to ``BuildSettingsService``, the service of the Hub API's ``build-link`` and ``build-rules``
routes, which asks the authorizer again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.builds.manage import LinkSecrets
from dockyard.errors import Invalid
from dockyard.http.credentials import client_ip
from dockyard.http.web.access import admin_view
from dockyard.http.web.builds import render_builds
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt, field
from dockyard.http.web.lifecycle_forms import whole_number
from dockyard.http.web.security import Visit, finish, form
from dockyard.repos.snapshots import RepositoryView

MAX_ARG_LINES = 50


def build_args_of(fields: dict[str, str]) -> list[dict[str, Any]]:
    """``NAME=value`` per line, from the plain and the secret text areas (a secret one is sealed, never shown)."""
    found: list[dict[str, Any]] = []
    for name, secret in (("build_args", False), ("secret_build_args", True)):
        lines = [line.strip() for line in fields.get(name, "").splitlines() if line.strip()]
        if len(lines) > MAX_ARG_LINES:
            raise Invalid("build_rule", f"at most {MAX_ARG_LINES} build args")
        for line in lines:
            key, equals, value = line.partition("=")
            if not equals:
                raise Invalid("build_rule", "write one build arg per line as NAME=value")
            found.append({"name": key.strip(), "value": value, "secret": secret})
    return found


def _checked(fields: dict[str, str], name: str) -> bool:
    return fields.get(name) == "on"


def _action(
    request: Request, current: Visit, view: RepositoryView, fields: dict[str, str], made: list[LinkSecrets]
) -> Callable[[], Awaitable[object]]:
    settings = services_of(request).build_settings
    actor, ip, namespace, name = current.principal, client_ip(request), view.namespace, view.name

    async def link() -> None:
        minutes = whole_number(fields, "poll_minutes") or 0
        _, secrets = await settings.link(
            actor,
            namespace,
            name,
            url=field(fields, "url"),
            https_username=fields.get("https_username", "").strip() or None,
            https_token=fields.get("https_token", "") or None,
            ssh_known_hosts=fields.get("ssh_known_hosts", "").strip() or None,
            poll_interval_seconds=minutes * 60,
            source_ip=ip,
        )
        made.append(secrets)

    def rule_fields() -> dict[str, Any]:
        return {
            "source_type": "Tag" if fields.get("source_type") == "Tag" else "Branch",
            "source_name": field(fields, "source_name"),
            "tag": field(fields, "tag"),
            "dockerfile": fields.get("dockerfile", "").strip() or "Dockerfile",
            "build_context": fields.get("build_context", "").strip() or "/",
            "autobuild": _checked(fields, "autobuild"),
            "build_cache": _checked(fields, "build_cache"),
            "also_latest": _checked(fields, "also_latest"),
            "network": _checked(fields, "network"),
            "source_ip": ip,
        }

    async def add_rule() -> None:
        await settings.add_rule(actor, namespace, name, build_args=build_args_of(fields), **rule_fields())

    async def update_rule() -> None:  # the build args stay as stored (secret values are never shown to edit)
        await settings.update_rule(actor, namespace, name, field(fields, "rule"), **rule_fields())

    async def unknown() -> None:
        raise Invalid("request", "unknown action")

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "link": link,
        "unlink": lambda: settings.unlink(actor, namespace, name, source_ip=ip),
        "add_rule": add_rule,
        "update_rule": update_rule,
        "remove_rule": lambda: settings.delete_rule(actor, namespace, name, field(fields, "rule"), source_ip=ip),
    }
    return calls.get(fields.get("action", ""), unknown)


async def save_build_settings(request: Request) -> Response:
    current = await visit_of(request)
    fields = await form(request, current)
    view = await admin_view(request, current)
    made: list[LinkSecrets] = []
    failed = await attempt(_action(request, current, view, fields, made))
    if failed is not None:
        message, status = failed
        return await render_builds(request, current, error=message, status=status)
    if made:  # the webhook secret and the trigger URL: shown on this answer only
        return await render_builds(request, current, made=made[0])
    target = f"/r/{quote(view.namespace)}/{quote(view.name)}/builds?saved={quote(fields.get('action', ''))}"
    return finish(RedirectResponse(target, status_code=303), request, current)
