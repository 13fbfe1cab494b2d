"""``GET /v1/search?q=&n=&page=`` for ``docker search``: repositories the caller may see (anonymous: public
ones) whose name or description contains the query, best matches first, in the index's v1 envelope
(``num_results`` is the total over all pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from dockyard.core.paging import MAX_PAGE_SIZE, PageRequest
from dockyard.http.api.deps import Caller, Services
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import PRINTABLE_OR_EMPTY, error_responses
from dockyard.repos.search import MAX_QUERY, search

router = api_router(prefix="/v1", tags=["search"])

DEFAULT_RESULTS = 25


class SearchResultModel(BaseModel):
    name: str = Field(description="the registry name, ``namespace/repository``")
    description: str
    star_count: int
    is_official: bool
    is_automated: bool = Field(description="linked to a git repository for automated builds")


class SearchResponse(BaseModel):
    query: str
    num_results: int = Field(description="matches over all pages")
    num_pages: int
    page: int
    page_size: int
    results: list[SearchResultModel]


@router.get("/search", response_model=SearchResponse, responses=error_responses(401))
async def search_repositories(
    svc: Services,
    who: Caller,
    q: Annotated[
        str, Query(max_length=MAX_QUERY, pattern=PRINTABLE_OR_EMPTY, description="text in the name or description")
    ] = "",
    n: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="results per page")] = DEFAULT_RESULTS,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
) -> SearchResponse:
    """Search repositories (``docker search``)."""
    found = await search(svc.registry.ctx, who, q, PageRequest(page, n))
    return SearchResponse(
        query=q,
        num_results=found.count,
        num_pages=-(-found.count // n),
        page=page,
        page_size=n,
        results=[SearchResultModel.model_validate(item, from_attributes=True) for item in found.items],
    )
