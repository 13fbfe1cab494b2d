"""Repository pages: the overview (``/r/<ns>/<repo>``, ``/_/<name>`` for ``library``: README, description,
visibility, pull command, stars, pulls, last push), the tags tab (paginated, sortable, each platform's digest),
the tag page (platforms, layers with their history lines, config, referrers and signatures) and the star forms.

Every read goes through ``RepositoryService``/``TagService``, which answer ``NotFound("repository")`` to whoever
may not pull a private repository: its pages are then 404s, as the API's answers are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.authz.principal import Principal
from dockyard.core.names import LIBRARY
from dockyard.core.paging import MAX_PAGE_SIZE, Page, PageRequest
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.paging import link, page_number, pager
from dockyard.http.web.render import page
from dockyard.http.web.security import finish, form
from dockyard.http.web.services import WebServices
from dockyard.repos.snapshots import RepositoryView
from dockyard.repos.tags import TagView

TAGS_PER_PAGE = 25
# Orders the DB gives for any number of tags; the others are computed over every tag, up to this many.
DB_ORDERS = {"name": "name", "-name": "-name", "pushed": "last_updated", "-pushed": "-last_updated"}
COMPUTED_ORDERS = ("size", "-size", "platforms", "-platforms", "signature", "-signature", "pulled", "-pulled")
MAX_COMPUTED_SORT = 500


@dataclass(frozen=True, slots=True)
class TagRow:
    tag: TagView
    signature: str  # verified | signed | unsigned


def home_of(namespace: str, name: str) -> str:
    return f"/_/{name}" if namespace == LIBRARY else f"/r/{namespace}/{name}"


def pull_ref(request: Request, view: RepositoryView, tag: str | None = None) -> str:
    host = request.url.netloc
    name = view.full_name
    return f"{host}/{name}" + (f":{tag}" if tag and tag != "latest" else "")


async def _repository(request: Request, namespace: str, name: str) -> tuple[WebServices, Any, RepositoryView]:
    services = services_of(request)
    current = await visit_of(request)
    view = await services.repositories.get(current.principal, namespace, name)
    return services, current, view


async def _overview(request: Request, namespace: str, name: str) -> Response:
    _, current, view = await _repository(request, namespace, name)
    return page(
        request,
        current,
        "repository.html",
        title=view.full_name,
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view),
        tab="overview",
    )


async def repo_page(request: Request) -> Response:
    namespace, name = request.path_params["ns"], request.path_params["repo"]
    if namespace == LIBRARY:
        return RedirectResponse(f"/_/{name}", status_code=301)
    return await _overview(request, namespace, name)


async def library_page(request: Request) -> Response:
    return await _overview(request, LIBRARY, request.path_params["repo"])


def _signature_state(results: list[dict[str, Any]]) -> str:
    if any(r.get("verified") for r in results):
        return "verified"
    return "signed" if results else "unsigned"


def _sort_key(order: str, row: TagRow) -> Any:
    field = order.removeprefix("-")
    tag = row.tag
    if field == "size":
        return tag.full_size
    if field == "platforms":
        return len(tag.images)
    if field == "signature":
        return ("unsigned", "signed", "verified").index(row.signature)
    return tag.tag_last_pulled.timestamp() if tag.tag_last_pulled else 0.0


async def _rows(services: WebServices, view: RepositoryView, tags: list[TagView]) -> list[TagRow]:
    signatures = await services.checker.signatures_of(view.full_name, [tag.digest for tag in tags])
    return [TagRow(tag, _signature_state(signatures.get(tag.digest, []))) for tag in tags]


async def _tag_rows(
    services: WebServices, actor: Principal, view: RepositoryView, namespace: str, name: str, order: str, number: int
) -> tuple[Page[TagRow], str | None]:
    """One page of tags in ``order``; a notice when a computed order is not available for this many tags."""
    request = PageRequest(number, TAGS_PER_PAGE)
    if order in COMPUTED_ORDERS:
        first = await services.tags.list_tags(actor, namespace, name, PageRequest(1, MAX_PAGE_SIZE))
        if first.count <= MAX_COMPUTED_SORT:
            every = list(first.items)
            for extra in range(2, -(-first.count // MAX_PAGE_SIZE) + 1):
                every += (
                    await services.tags.list_tags(actor, namespace, name, PageRequest(extra, MAX_PAGE_SIZE))
                ).items
            rows = await _rows(services, view, every)
            rows.sort(key=lambda r: (_sort_key(order, r), r.tag.name), reverse=order.startswith("-"))
            return Page(rows[request.offset : request.offset + TAGS_PER_PAGE], len(rows), request), None
        notice = (
            f"Sorting by {order.removeprefix('-')} is available for repositories with up to {MAX_COMPUTED_SORT} tags."
        )
        order = "-pushed"
    else:
        notice = None
    tags = await services.tags.list_tags(
        actor, namespace, name, request, ordering=DB_ORDERS.get(order, "-last_updated")
    )
    return Page(await _rows(services, view, tags.items), tags.count, request), notice


async def _tags(request: Request, namespace: str, name: str) -> Response:
    services, current, view = await _repository(request, namespace, name)
    order = request.query_params.get("ordering", "-pushed")
    if order not in DB_ORDERS and order not in COMPUTED_ORDERS:
        order = "-pushed"
    rows, notice = await _tag_rows(services, current.principal, view, namespace, name, order, page_number(request))

    def sort_link(field: str) -> str:
        return link(request, ordering=field if order == f"-{field}" else f"-{field}", page=1)

    return page(
        request,
        current,
        "tags.html",
        title=f"{view.full_name} tags",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view),
        tab="tags",
        rows=rows,
        pages=pager(request, rows),
        order=order,
        notice=notice,
        sort_link=sort_link,
    )


async def tags_page(request: Request) -> Response:
    namespace, name = request.path_params["ns"], request.path_params["repo"]
    if namespace == LIBRARY:
        return RedirectResponse(f"/_/{name}/tags", status_code=301)
    return await _tags(request, namespace, name)


async def library_tags(request: Request) -> Response:
    return await _tags(request, LIBRARY, request.path_params["repo"])


async def _tag(request: Request, namespace: str, name: str, tag: str) -> Response:
    services, current, view = await _repository(request, namespace, name)
    detail = await services.inspector.tag_detail(current.principal, namespace, name, tag)
    signatures = await services.checker.signatures(detail.repository, detail.tag.digest)
    return page(
        request,
        current,
        "tag.html",
        title=f"{view.full_name}:{tag}",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view, tag),
        tab="tags",
        detail=detail,
        signatures=signatures,
    )


async def tag_page(request: Request) -> Response:
    namespace, name, tag = request.path_params["ns"], request.path_params["repo"], request.path_params["tag"]
    if namespace == LIBRARY:
        return RedirectResponse(f"/_/{name}/tags/{tag}", status_code=301)
    return await _tag(request, namespace, name, tag)


async def library_tag(request: Request) -> Response:
    return await _tag(request, LIBRARY, request.path_params["repo"], request.path_params["tag"])


async def _set_star(request: Request, starred: bool) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    await form(request, current)
    namespace, name = request.path_params["ns"], request.path_params["repo"]
    if starred:
        await services.repositories.star(current.principal, namespace, name)
    else:
        await services.repositories.unstar(current.principal, namespace, name)
    return finish(RedirectResponse(home_of(namespace, name), status_code=303), request, current)


async def star(request: Request) -> Response:
    return await _set_star(request, True)


async def unstar(request: Request) -> Response:
    return await _set_star(request, False)
