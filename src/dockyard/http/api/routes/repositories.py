"""Repositories of a namespace: list and create (``/api/v2/namespaces/{ns}/repositories``), read, check, update
and delete one (``…/{repo}``), and the legacy ``/api/v2/repositories/{ns}[/{repo}]`` paths Docker Hub still
serves (same shapes; they also take ``PATCH`` and ``DELETE``, which scripts such as docker-pushrm use).

A private repository the caller may not see answers 404 exactly as a missing one. ``DELETE`` answers 202
Accepted with no body, as Docker Hub does: the rows go at once, blob bytes are left to garbage collection.
Repository names are one path component (Docker Hub's rule); repositories pushed with deeper names
(``ns/a/b``) are listed (name ``a/b``) but not addressable here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from dockyard.authz.principal import Principal
from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid
from dockyard.http.api.deps import ApiServices, Caller, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import NO_NUL, PRINTABLE, NamespaceName, NsPath, RepoPath, error_responses
from dockyard.http.api.schemas.repositories import (
    RepositoryModel,
    RepositoryPage,
    repository_detail,
    repository_summary,
)
from dockyard.http.credentials import client_ip
from dockyard.repos.snapshots import ImmutableTagsSettings

router = api_router(prefix="/api/v2", tags=["repositories"])

Ordering = Literal["name", "-name", "last_updated", "-last_updated", "pull_count", "-pull_count"]
NameFilter = Annotated[
    str | None,
    Query(max_length=255, pattern=PRINTABLE, description="only repositories whose name contains this (ignoring case)"),
]
OrderingParam = Annotated[Ordering | None, Query(description="sort key, ``-`` for descending; default ``name``")]

NAME_PATTERN = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"


class RepositoryCreate(BaseModel):
    name: str = Field(min_length=2, max_length=255, pattern=NAME_PATTERN)
    namespace: NamespaceName | None = Field(default=None, description="must be the namespace of the path if given")
    description: str = Field(default="", max_length=100, pattern=NO_NUL)
    full_description: str = Field(default="", max_length=25_000, pattern=NO_NUL, description="Markdown")
    registry: str | None = Field(
        default=None, max_length=255, pattern=NO_NUL, description="accepted for compatibility; ignored"
    )
    is_private: bool | None = Field(default=None, description="default: the namespace's (else the server's) setting")


class ImmutableTagsSettingsIn(BaseModel):
    """Docker Hub's ``immutable_tags_settings``: rules are RE2 regular expressions matched against the whole tag."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    rules: list[str] = Field(max_length=100)


class RepositoryUpdate(BaseModel):
    """Unknown fields are refused (422), never silently ignored."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=100, pattern=NO_NUL)
    full_description: str | None = Field(default=None, max_length=25_000, pattern=NO_NUL)
    is_private: bool | None = None
    immutable_tags_settings: ImmutableTagsSettingsIn | None = None


async def _list(
    request: Request,
    svc: ApiServices,
    who: Principal,
    ns: str,
    paging: PageRequest,
    name: str | None,
    ordering: str | None,
) -> RepositoryPage:
    page = await svc.repositories.list_namespace(who, ns, paging, name_filter=name, ordering=ordering)
    return RepositoryPage(**paginated(request, page, [repository_summary(item) for item in page.items]))


@router.get("/namespaces/{ns}/repositories", response_model=RepositoryPage, responses=error_responses(401, 404))
async def list_repositories(
    request: Request,
    svc: Services,
    who: Caller,
    ns: NsPath,
    paging: Paging,
    name: NameFilter = None,
    ordering: OrderingParam = None,
) -> RepositoryPage:
    """The namespace's repositories the caller may see. 404 if no account owns the namespace."""
    return await _list(request, svc, who, ns, paging, name, ordering)


@router.get("/repositories/{ns}", response_model=RepositoryPage, responses=error_responses(401, 404), deprecated=True)
async def legacy_list_repositories(
    request: Request,
    svc: Services,
    who: Caller,
    ns: NsPath,
    paging: Paging,
    name: NameFilter = None,
    ordering: OrderingParam = None,
) -> RepositoryPage:
    """Legacy path of ``GET /api/v2/namespaces/{ns}/repositories``."""
    return await _list(request, svc, who, ns, paging, name, ordering)


@router.post(
    "/namespaces/{ns}/repositories",
    status_code=201,
    response_model=RepositoryModel,
    responses=error_responses(400, 401, 403, 404, 409),
)
async def create_repository(
    body: RepositoryCreate, request: Request, svc: Services, who: SignedIn, ns: NsPath
) -> RepositoryModel:
    """Create an empty repository (owners of the namespace)."""
    if body.namespace is not None and body.namespace != ns:
        raise Invalid("request", "namespace in the body differs from the path", {"namespace": body.namespace})
    view = await svc.repositories.create(
        who,
        ns,
        body.name,
        description=body.description,
        full_description=body.full_description,
        is_private=body.is_private,
        source_ip=client_ip(request),
    )
    return repository_detail(view)


async def _get(svc: ApiServices, who: Principal, ns: str, repo: str) -> RepositoryModel:
    return repository_detail(await svc.repositories.get(who, ns, repo))


@router.get("/namespaces/{ns}/repositories/{repo}", response_model=RepositoryModel, responses=error_responses(401, 404))
async def get_repository(svc: Services, who: Caller, ns: NsPath, repo: RepoPath) -> RepositoryModel:
    """One repository, with the caller's permissions on it."""
    return await _get(svc, who, ns, repo)


@router.head(
    "/namespaces/{ns}/repositories/{repo}",
    status_code=200,
    response_class=Response,
    responses=error_responses(401, 404, ok=(200, "the repository exists and the caller may see it")),
)
async def check_repository(svc: Services, who: Caller, ns: NsPath, repo: RepoPath) -> Response:
    """200 if the repository exists and the caller may see it (no body)."""
    await svc.repositories.get(who, ns, repo)
    return Response(status_code=200)


@router.get(
    "/repositories/{ns}/{repo}", response_model=RepositoryModel, responses=error_responses(401, 404), deprecated=True
)
async def legacy_get_repository(svc: Services, who: Caller, ns: NsPath, repo: RepoPath) -> RepositoryModel:
    """Legacy path of ``GET /api/v2/namespaces/{ns}/repositories/{repo}``."""
    return await _get(svc, who, ns, repo)


async def _update(
    body: RepositoryUpdate, request: Request, svc: ApiServices, who: Principal, ns: str, repo: str
) -> RepositoryModel:
    settings = body.immutable_tags_settings
    view = await svc.repositories.update(
        who,
        ns,
        repo,
        description=body.description,
        full_description=body.full_description,
        is_private=body.is_private,
        immutable_tags=None if settings is None else ImmutableTagsSettings(settings.enabled, tuple(settings.rules)),
        source_ip=client_ip(request),
    )
    return repository_detail(view)


@router.patch(
    "/namespaces/{ns}/repositories/{repo}",
    response_model=RepositoryModel,
    responses=error_responses(400, 401, 403, 404),
)
async def update_repository(
    body: RepositoryUpdate, request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath
) -> RepositoryModel:
    """Change the descriptions or the visibility (admin permission on the repository). Omitted fields stay."""
    return await _update(body, request, svc, who, ns, repo)


@router.patch(
    "/repositories/{ns}/{repo}",
    response_model=RepositoryModel,
    responses=error_responses(400, 401, 403, 404),
    deprecated=True,
)
async def legacy_update_repository(
    body: RepositoryUpdate, request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath
) -> RepositoryModel:
    """Legacy path of ``PATCH /api/v2/namespaces/{ns}/repositories/{repo}``."""
    return await _update(body, request, svc, who, ns, repo)


_DELETED = (202, "deleted (blob bytes are reclaimed later by garbage collection)")


@router.delete(
    "/namespaces/{ns}/repositories/{repo}",
    status_code=202,
    response_class=Response,
    responses=error_responses(401, 403, 404, ok=_DELETED),
)
async def delete_repository(request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath) -> Response:
    """Delete the repository with its tags, manifests, permissions and stars (admin permission)."""
    await svc.repositories.delete(who, ns, repo, source_ip=client_ip(request))
    return Response(status_code=202)


@router.delete(
    "/repositories/{ns}/{repo}",
    status_code=202,
    response_class=Response,
    responses=error_responses(401, 403, 404, ok=_DELETED),
    deprecated=True,
)
async def legacy_delete_repository(
    request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath
) -> Response:
    """Legacy path of ``DELETE /api/v2/namespaces/{ns}/repositories/{repo}``."""
    await svc.repositories.delete(who, ns, repo, source_ip=client_ip(request))
    return Response(status_code=202)
