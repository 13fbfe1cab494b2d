"""Who may use a repository, and new repositories: ``/r/<ns>/<repo>/access`` (its administrators: a user's
repository lists its collaborators — add with a level, change, remove —; an organization's lists the teams that
hold a level on it — grant, change, revoke, which the organization's owners may do) and ``/repositories/new``
(create an empty repository in a namespace one owns, with its description and visibility).

The page hands each change to the service the Hub API calls (``CollaboratorService``, ``TeamService``,
``RepositoryService.create``); those ask the authorizer. The access page's GET needs ``RepositoryView
.permissions.admin`` (the authorizer's level, as the settings page does): 404 to who may not see the repository,
403 to its other readers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.core.paging import PageRequest
from dockyard.errors import Denied, Invalid, NotFound
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import GRANTABLE, attempt, field, level_of, require_signed_in
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.http.web.security import Visit, finish, form
from dockyard.repos.snapshots import RepositoryView

MAX_ORGS = 100


async def admin_view(request: Request, current: Visit) -> RepositoryView:
    """The repository of the path for its administrators (the authorizer's level): 404 to who may not see it, 403
    to its other readers."""
    require_signed_in(current)
    services = services_of(request)
    view = await services.repositories.get(current.principal, request.path_params["ns"], request.path_params["repo"])
    if not view.permissions.admin:
        raise Denied("repository", "only the repository's administrators manage who may use it")
    return view


async def _render(
    request: Request, current: Visit, view: RepositoryView, *, error: str = "", status: int = 200
) -> Response:
    services = services_of(request)
    actor = current.principal
    is_org = await _is_org(request, view.namespace)
    collaborators = [] if is_org else await services.collaborators.list_collaborators(view.full_name, actor=actor)
    teams = await services.teams.list_repository_teams(view.full_name, actor=actor) if is_org else []
    return page(
        request,
        current,
        "repo_access.html",
        status=status,
        title=f"Access · {view.full_name}",
        repo=view,
        home=home_of(view.namespace, view.name),
        pull=pull_ref(request, view),
        tab="access",
        is_org=is_org,
        collaborators=collaborators,
        teams=teams,
        levels=GRANTABLE,
        error=error,
        saved=request.query_params.get("saved") == "1",
    )


async def _is_org(request: Request, namespace: str) -> bool:
    try:
        await services_of(request).orgs.get_org(namespace)
    except NotFound:
        return False
    return True


async def repo_access(request: Request) -> Response:
    current = await visit_of(request)
    return await _render(request, current, await admin_view(request, current))


def _action(
    request: Request, current: Visit, view: RepositoryView, fields: dict[str, str], is_org: bool
) -> Callable[[], Awaitable[object]]:
    services = services_of(request)
    actor, ip, repository = current.principal, client_ip(request), view.full_name
    action = fields.get("action", "")
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "set_collaborator": lambda: services.collaborators.set_collaborator(
            repository, field(fields, "username"), level_of(fields.get("permission", "")), actor=actor, source_ip=ip
        ),
        "remove_collaborator": lambda: services.collaborators.remove_collaborator(
            repository, field(fields, "username"), actor=actor, source_ip=ip
        ),
        "grant_team": lambda: services.teams.set_team_permission(
            view.namespace,
            field(fields, "team"),
            repository,
            level_of(fields.get("permission", "")),
            actor=actor,
            source_ip=ip,
        ),
        "revoke_team": lambda: services.teams.remove_team_permission(
            view.namespace, field(fields, "team"), repository, actor=actor, source_ip=ip
        ),
    }
    wanted = {"grant_team", "revoke_team"} if is_org else {"set_collaborator", "remove_collaborator"}
    if action not in wanted:

        async def unknown() -> None:
            raise Invalid("request", "unknown action")

        return unknown
    return calls[action]


async def save_repo_access(request: Request) -> Response:
    current = await visit_of(request)
    fields = await form(request, current)
    view = await admin_view(request, current)
    is_org = await _is_org(request, view.namespace)
    failed = await attempt(_action(request, current, view, fields, is_org))
    if failed is not None:
        message, status = failed
        return await _render(request, current, view, error=message, status=status)
    target = f"/r/{quote(view.namespace)}/{quote(view.name)}/access?saved=1"
    return finish(RedirectResponse(target, status_code=303), request, current)


async def _namespaces(request: Request, current: Visit) -> list[str]:
    """The signed-in user's own namespace and the organizations they belong to (the service refuses the ones
    they may not create in)."""
    services = services_of(request)
    user = current.principal.name
    orgs = await services.orgs.list_user_orgs(user, PageRequest(1, MAX_ORGS), actor=current.principal)
    return [user, *(o.org.name for o in orgs.items)]


async def new_repo_form(request: Request) -> Response:
    current = await visit_of(request)
    require_signed_in(current)
    namespaces = await _namespaces(request, current)
    chosen = request.query_params.get("namespace", namespaces[0])
    return page(
        request, current, "repo_new.html", title="New repository", namespaces=namespaces, fields={"namespace": chosen}
    )


async def create_repo(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    require_signed_in(current)
    namespace, name = fields.get("namespace", "").strip(), fields.get("name", "").strip()
    visibility = fields.get("visibility")

    async def create() -> None:
        await services.repositories.create(
            current.principal,
            field(fields, "namespace"),
            field(fields, "name"),
            description=fields.get("description", "").strip(),
            is_private=None if visibility not in ("public", "private") else visibility == "private",
            source_ip=client_ip(request),
        )

    failed = await attempt(create)
    if failed is not None:
        message, status = failed
        return page(
            request,
            current,
            "repo_new.html",
            status=status,
            title="New repository",
            namespaces=await _namespaces(request, current),
            fields=fields,
            error=message,
        )
    return finish(RedirectResponse(home_of(namespace, name), status_code=303), request, current)
