"""Collaborators in the Hub API: users given read / write / admin on one repository of a user's namespace
(organizations grant through teams). Managed by the repository's administrators."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from dockyard.authz.permissions import Level
from dockyard.http.api.deps import Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.accounts import AccountPath, NamePath, Permission, level_label
from dockyard.http.api.schemas.common import NO_CONTENT, Paginated, error_responses, page_of
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["collaborators"])


class Collaborator(BaseModel):
    username: str
    permission: Permission


class SetCollaborator(BaseModel):
    permission: Permission


@router.get(
    "/repositories/{ns}/{repo}/collaborators",
    response_model=Paginated[Collaborator],
    responses=error_responses(401, 403, 404),
)
async def list_collaborators(
    ns: AccountPath, repo: NamePath, request: Request, svc: Services, who: SignedIn, page: Paging
) -> dict[str, Any]:
    """The users granted a permission on the repository, by name (its administrators)."""
    found = page_of(await svc.collaborators.list_collaborators(f"{ns}/{repo}", actor=who), page)
    results = [Collaborator(username=c.username, permission=level_label(c.level)) for c in found.items]
    return paginated(request, found, results)


@router.put(
    "/repositories/{ns}/{repo}/collaborators/{username}",
    response_model=Collaborator,
    responses=error_responses(400, 401, 403, 404),
)
async def set_collaborator(
    ns: AccountPath,
    repo: NamePath,
    username: AccountPath,
    body: SetCollaborator,
    request: Request,
    svc: Services,
    who: SignedIn,
) -> Collaborator:
    """Give a user ``permission`` on the repository, or change it (the repository's administrators)."""
    info = await svc.collaborators.set_collaborator(
        f"{ns}/{repo}", username, Level.parse(body.permission), actor=who, source_ip=client_ip(request)
    )
    return Collaborator(username=info.username, permission=level_label(info.level))


@router.delete(
    "/repositories/{ns}/{repo}/collaborators/{username}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def remove_collaborator(
    ns: AccountPath, repo: NamePath, username: AccountPath, request: Request, svc: Services, who: SignedIn
) -> Response:
    """Take a user's permission on the repository away (the repository's administrators)."""
    await svc.collaborators.remove_collaborator(f"{ns}/{repo}", username, actor=who, source_ip=client_ip(request))
    return Response(status_code=204)
