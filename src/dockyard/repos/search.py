"""``docker search`` (``GET /v1/search``): repositories the caller may see whose name or description contains the
query, best matches first.

Ranking: the repository's name (the path after its namespace, or the full name) equals the query; then it starts
with it; then the full name contains it; then only the description does. Ties go to more stars, then more pulls,
then the name. One statement counts and one fetches the page; the DB filters, ranks and sorts (a scan of the
repositories table with LIKE, milliseconds at 100,000 repositories), Python only sees the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, exists, func, or_, select

from dockyard.authz.permissions import load_facts, visible_repositories
from dockyard.authz.principal import Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.models import BuildLink, Repository
from dockyard.registry.context import RegistryContext
from dockyard.repos.access import LIKE_ESCAPE, like_contains

MAX_QUERY = 255


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One result as the Docker Engine reads it. ``name`` is the registry name (``ns/repo``)."""

    name: str
    description: str
    star_count: int
    is_official: bool
    is_automated: bool


async def search(ctx: RegistryContext, actor: Principal, query: str, page_request: PageRequest) -> Page[SearchResult]:
    """Repositories visible to ``actor`` matching ``query`` (case-insensitive), ranked; ``count`` is the total."""
    q = query.strip().lower()[:MAX_QUERY]
    pattern = like_contains(q)
    # The name after the namespace; one-component names (``library``'s) are their own short name.
    short = case(
        (Repository.name.like("%/%"), func.substr(Repository.name, func.length(Repository.namespace) + 2)),
        else_=Repository.name,
    )
    name_match = Repository.name.like(pattern, escape=LIKE_ESCAPE)
    description_match = func.lower(Repository.description).like(pattern, escape=LIKE_ESCAPE)
    rank = case(
        (or_(short == q, Repository.name == q), 0),
        (or_(func.substr(short, 1, len(q)) == q, func.substr(Repository.name, 1, len(q)) == q), 1),
        (name_match, 2),
        else_=3,
    )
    async with ctx.db.read(consistent=True) as conn:
        facts = await load_facts(conn, actor)
        where = [visible_repositories(actor, facts), or_(name_match, description_match)]
        total = int((await conn.execute(select(func.count()).select_from(Repository).where(*where))).scalar_one())
        rows = (
            await conn.execute(
                select(
                    Repository.name,
                    Repository.description,
                    Repository.star_count,
                    exists().where(BuildLink.repository == Repository.name).label("automated"),
                )
                .where(*where)
                .order_by(rank, Repository.star_count.desc(), Repository.pull_count.desc(), Repository.name)
                .limit(page_request.page_size)
                .offset(page_request.offset)
            )
        ).all()
    items = [
        SearchResult(row.name, row.description or "", int(row.star_count or 0), False, bool(row.automated))
        for row in rows
    ]
    return Page(items, total, page_request)
