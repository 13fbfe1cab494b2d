"""Stars: ``POST|DELETE /api/v2/repositories/{ns}/{repo}/stars`` (star or unstar as the signed-in user; both
idempotent, 204) and ``GET /api/v2/users/{username}/starred`` (what a user starred, most recent first, limited
to what the caller may see)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response

from dockyard.http.api.deps import Caller, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import PRINTABLE, NsPath, RepoPath, error_responses
from dockyard.http.api.schemas.repositories import RepositoryPage, repository_summary

router = api_router(prefix="/api/v2", tags=["stars"])

Username = Annotated[str, Path(min_length=1, max_length=255, pattern=PRINTABLE)]

_DONE = (204, "done (also when nothing changed)")


@router.post(
    "/repositories/{ns}/{repo}/stars",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, ok=_DONE),
)
async def star_repository(svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath) -> Response:
    """Star a repository the caller may see (users only; robots get 403)."""
    await svc.repositories.star(who, ns, repo)
    return Response(status_code=204)


@router.delete(
    "/repositories/{ns}/{repo}/stars",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, ok=_DONE),
)
async def unstar_repository(svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath) -> Response:
    """Remove the caller's star."""
    await svc.repositories.unstar(who, ns, repo)
    return Response(status_code=204)


@router.get("/users/{username}/starred", response_model=RepositoryPage, responses=error_responses(401, 404))
async def list_starred(
    request: Request, svc: Services, who: Caller, username: Username, paging: Paging
) -> RepositoryPage:
    """Repositories the user starred that the caller may see, most recently starred first."""
    page = await svc.repositories.list_starred(who, username, paging)
    return RepositoryPage(**paginated(request, page, [repository_summary(item) for item in page.items]))
