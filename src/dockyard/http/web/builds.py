"""A repository's automated builds in the web hub: ``/r/<ns>/<repo>/builds`` (the history, the status badge to
copy, and for writers a "Build now" form) and ``/r/<ns>/<repo>/builds/<id>`` (one build with its log so far).

Everything goes through ``BuildService`` — the service the Hub API's build routes call, so the same rules decide:
read on the repository sees the history and logs (a repository the visitor may not see is a 404), write may start
a build. Forms carry the CSRF token. Links and rules are managed through the API and the CLI (docs/builds.md).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.builds import logs
from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid, NotFound, Unauthorized
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.http.web.security import Visit, finish, form

BUILDS_SHOWN = 50
LOG_LINES_SHOWN = 5000


def _names(request: Request) -> tuple[str, str]:
    return request.path_params["ns"], request.path_params["repo"]


async def _render(request: Request, current: Visit, *, error: str = "", status: int = 200) -> Response:
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
        error=error,
    )


async def builds_page(request: Request) -> Response:
    return await _render(request, await visit_of(request))


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
        return await _render(request, current, error=exc.message, status=400)
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
