"""A repository's automated builds in the web hub: ``/r/<ns>/<repo>/builds`` (the history, the status badge to
copy, and for writers a "Build now" form) and ``/r/<ns>/<repo>/builds/<id>`` (one build with its log so far).

Everything goes through ``BuildService`` — the service the Hub API's build routes call, so the same rules decide:
read on the repository sees the history and logs (a repository the visitor may not see is a 404), write may start
a build and sees the build rules. For the repository's administrators the page also shows the git link and the
forms that change it and the rules (``build_settings``, through ``BuildSettingsService``). Forms carry the CSRF
token.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.builds import logs
from dockyard.builds.manage import LinkSecrets, LinkView, RuleView
from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid, NotFound, Unauthorized
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.http.web.security import Visit, finish, form
from dockyard.repos.snapshots import RepositoryView

BUILDS_SHOWN = 50
LOG_LINES_SHOWN = 5000


def _names(request: Request) -> tuple[str, str]:
    return request.path_params["ns"], request.path_params["repo"]


@dataclass(frozen=True, slots=True)
class BuildSettings:
    """What the page shows of the link and the rules: the link to its administrators (``manage``), the rules to
    its writers (None: not shown); the webhook and trigger URLs; the secrets of a link just made (shown once)."""

    manage: bool
    link: LinkView | None
    rules: list[RuleView] | None
    webhook_url: str
    trigger_url: str | None
    webhook_secret: str | None


def public_url(request: Request) -> str:
    """The server's public base URL (the setting, else the request's), as the Hub API writes trigger URLs."""
    return (services_of(request).settings.base_url or str(request.base_url)).rstrip("/")


async def build_settings(
    request: Request, current: Visit, view: RepositoryView, made: LinkSecrets | None = None
) -> BuildSettings:
    services = services_of(request)
    api = f"{public_url(request)}/api/v2/repositories/{view.namespace}/{view.name}"
    link = rules = None
    try:  # NotFound("build_link"): the repository is not linked
        if current.signed_in and view.permissions.admin:
            link = await services.build_settings.get_link(current.principal, view.namespace, view.name)
        if current.signed_in and view.permissions.write:
            rules = await services.build_settings.list_rules(current.principal, view.namespace, view.name)
    except NotFound as exc:
        if exc.subject != "build_link":
            raise
    return BuildSettings(
        manage=current.signed_in and view.permissions.admin,
        link=link,
        rules=rules,
        webhook_url=f"{api}/build-link/webhook",
        trigger_url=f"{api}/trigger/{made.trigger_token}/call/" if made else None,
        webhook_secret=made.webhook_secret if made else None,
    )


async def render_builds(
    request: Request, current: Visit, *, error: str = "", status: int = 200, made: LinkSecrets | None = None
) -> Response:
    services = services_of(request)
    namespace, name = _names(request)
    view = await services.repositories.get(current.principal, namespace, name)
    builds = await services.builds.list(current.principal, namespace, name, PageRequest(1, BUILDS_SHOWN))
    base = str(request.base_url).rstrip("/")
    return page(
        request,
        current,
        "builds.html",
        status=status,
        title=f"Builds · {view.full_name}",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view),
        tab="builds",
        builds=builds.items,
        build_count=builds.count,
        badge=f"{base}/r/{namespace}/{name}/badge.svg",
        settings=await build_settings(request, current, view, made),
        error=error,
        saved=request.query_params.get("saved", ""),
    )


async def builds_page(request: Request) -> Response:
    return await render_builds(request, await visit_of(request))


async def build_now(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    if not current.signed_in:
        raise Unauthorized("credentials", "sign in first")
    namespace, name = _names(request)
    ref = fields.get("ref", "").strip() or None
    try:
        await services.builds.run(
            current.principal,
            namespace,
            name,
            source_type="Tag" if fields.get("source_type") == "Tag" else "Branch",
            source_name=ref,
            source_ip=client_ip(request),
        )
    except (Invalid, NotFound) as exc:
        if isinstance(exc, NotFound) and exc.subject == "repository":
            raise
        return await render_builds(request, current, error=exc.message, status=400)
    return finish(RedirectResponse(f"/r/{namespace}/{name}/builds", status_code=303), request, current)


async def build_page(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    namespace, name = _names(request)
    view = await services.repositories.get(current.principal, namespace, name)
    row_id, build = await services.builds.get(current.principal, namespace, name, request.path_params["build"])
    lines: list[str] = []
    async for line in logs.read_log(services.builds.db, services.registry.blobs, row_id):
        lines.append(line)
        if len(lines) >= LOG_LINES_SHOWN:
            break
    return page(
        request,
        current,
        "build.html",
        title=f"Build {build.id[:8]} · {view.full_name}",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view),
        tab="builds",
        build=build,
        log="\n".join(lines),
        truncated=len(lines) >= LOG_LINES_SHOWN,
    )
