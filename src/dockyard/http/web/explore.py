"""The explore page (``/``: search, recently updated public repositories, the signed-in user's own and starred
ones) and the namespace pages (``/u/<user>``, ``/orgs/<org>``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.core.paging import PageRequest
from dockyard.errors import Denied, NotFound, Unauthorized
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.paging import page_number, pager
from dockyard.http.web.render import page
from dockyard.repos.search import MAX_QUERY, search

PAGE_SIZE = 25
SIDE_LIST = 20


async def home(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    actor = current.principal
    query = request.query_params.get("q", "").strip()[:MAX_QUERY]
    results = None
    if query:
        results = await search(services.registry.ctx, actor, query, PageRequest(page_number(request), PAGE_SIZE))
    own = starred = None
    if current.signed_in:
        try:
            own = (await services.repositories.list_namespace(actor, actor.name, PageRequest(1, SIDE_LIST))).items
        except NotFound:
            own = []
        starred = (await services.repositories.list_starred(actor, actor.name, PageRequest(1, SIDE_LIST))).items
    return page(
        request,
        current,
        "explore.html",
        title="Explore",
        query=query,
        results=results,
        pages=pager(request, results) if results is not None else None,
        recent=await services.repositories.list_recent(actor, 12),
        own=own,
        starred=starred,
    )


async def user_page(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    name = request.path_params["user"]
    try:
        account = await services.users.get_user(name)
    except NotFound:
        await services.orgs.get_org(name)  # an organization has its own page; anything else is a 404
        return RedirectResponse(f"/orgs/{name}", status_code=303)
    repos = await services.repositories.list_namespace(
        current.principal, account.name, PageRequest(page_number(request), PAGE_SIZE), ordering="-last_updated"
    )
    return page(
        request,
        current,
        "namespace.html",
        title=account.name,
        account=account,
        kind="user",
        repos=repos,
        pages=pager(request, repos),
        members=None,
        teams=None,
    )


async def org_page(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    org = await services.orgs.get_org(request.path_params["org"])
    actor = current.principal
    repos = await services.repositories.list_namespace(
        actor, org.name, PageRequest(page_number(request), PAGE_SIZE), ordering="-last_updated"
    )
    members = teams = None
    try:  # members and teams are shown to the organization's members, as the API does
        members = (await services.orgs.list_members(org.name, PageRequest(1, 100), actor=actor)).items
        teams = (await services.teams.list_teams(org.name, PageRequest(1, 100), actor=actor)).items
    except (Denied, NotFound, Unauthorized):
        members = teams = None
    return page(
        request,
        current,
        "namespace.html",
        title=org.name,
        account=org,
        kind="org",
        repos=repos,
        pages=pager(request, repos),
        members=members,
        teams=teams,
    )
