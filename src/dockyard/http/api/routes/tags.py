"""Tags of a repository as Docker Hub shows them, with the platform images behind each:
``GET /api/v2/namespaces/{ns}/repositories/{repo}/tags`` and ``GET|HEAD|DELETE …/tags/{tag}``, plus the legacy
``/api/v2/repositories/{ns}/{repo}/tags[/{tag}]`` paths that scripts still use (same shapes).

``DELETE`` untags (204, as Docker Hub): the manifest stays, like a registry ``DELETE /v2/<name>/manifests/<tag>``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel, Field

from dockyard.authz.principal import Principal
from dockyard.core.paging import PageRequest
from dockyard.errors import NotFound
from dockyard.http.api.deps import ApiServices, Caller, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import PRINTABLE, NsPath, Paginated, RepoPath, Timestamp, error_responses
from dockyard.http.credentials import client_ip
from dockyard.repos.access import full_name
from dockyard.repos.tags import TagView

router = api_router(prefix="/api/v2", tags=["tags"])

TagName = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE, description="tag name")]
Ordering = Literal["name", "-name", "last_updated", "-last_updated"]
NameFilter = Annotated[
    str | None, Query(max_length=128, pattern=PRINTABLE, description="only tags whose name contains this")
]
OrderingParam = Annotated[
    Ordering | None, Query(description="sort key, ``-`` for descending; default ``-last_updated`` (newest first)")
]


class LayerModel(BaseModel):
    digest: str | None = Field(description="None for a history step that made no layer")
    size: int
    instruction: str


class TagImageModel(BaseModel):
    architecture: str
    features: str
    variant: str | None
    digest: str
    layers: list[LayerModel]
    os: str
    os_features: str
    os_version: str | None
    size: int = Field(description="bytes of the image's config and layers")
    status: str
    last_pulled: Timestamp | None
    last_pushed: Timestamp | None


class SignatureModel(BaseModel):
    key_id: str | None = Field(
        description="the trusted key (or keyless identity, oidc-…) that verified it, or the one it claims"
    )
    verified: bool
    signed_at: str | None = Field(description="when it was signed, if the signature says (RFC 3339)")
    format: str = Field(description="cosign (tag scheme), referrer (OCI 1.1) or bundle (Sigstore bundle)")
    identity: str | None = Field(default=None, description="a keyless signature's certificate subject")
    reason: str = Field(default="", description="why it is, or is not, verified")


class TagModel(BaseModel):
    id: int = Field(description="stable for a (repository, tag name)")
    name: str
    creator: int | None = Field(description="account id of the last pusher")
    last_updated: Timestamp
    last_updater: int | None
    last_updater_username: str | None
    repository: int
    full_size: int = Field(description="size of the linux/amd64 image, else of the first one")
    v2: bool
    status: str
    tag_status: str
    tag_last_pulled: Timestamp | None
    tag_last_pushed: Timestamp
    media_type: str
    content_type: str = Field(description="``image`` or ``artifact``")
    digest: str
    images: list[TagImageModel] = Field(description="one per platform (an image manifest has one)")
    signatures: list[SignatureModel] = Field(
        default_factory=list, description="signatures found for the tag's manifest, verified against trusted keys"
    )


TagPage = Paginated[TagModel]


def tag_model(view: TagView, signatures: list[dict[str, object]] | None = None) -> TagModel:
    model = TagModel.model_validate(view, from_attributes=True)
    if signatures:
        model.signatures = [
            SignatureModel(
                key_id=s.get("key_id"),
                verified=bool(s.get("verified")),
                signed_at=s.get("signed_at"),
                format=str(s.get("format")),
                identity=s.get("identity") if isinstance(s.get("identity"), str) else None,
                reason=str(s.get("reason") or ""),
            )
            for s in signatures
        ]
    return model


async def with_signatures(svc: ApiServices, ns: str, repo: str, views: list[TagView]) -> list[TagModel]:
    name = full_name(ns, repo)
    signatures = await svc.checker.signatures_of(name, [view.digest for view in views])
    return [tag_model(view, signatures.get(view.digest, [])) for view in views]


async def _list(
    request: Request,
    svc: ApiServices,
    who: Principal,
    ns: str,
    repo: str,
    paging: PageRequest,
    name: str | None,
    ordering: str | None,
) -> TagPage:
    page = await svc.tags.list_tags(who, ns, repo, paging, name_filter=name, ordering=ordering)
    return TagPage(**paginated(request, page, await with_signatures(svc, ns, repo, page.items)))


@router.get("/namespaces/{ns}/repositories/{repo}/tags", response_model=TagPage, responses=error_responses(401, 404))
async def list_tags(
    request: Request,
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    paging: Paging,
    name: NameFilter = None,
    ordering: OrderingParam = None,
) -> TagPage:
    """The repository's tags with their images."""
    return await _list(request, svc, who, ns, repo, paging, name, ordering)


@router.head(
    "/namespaces/{ns}/repositories/{repo}/tags",
    status_code=200,
    response_class=Response,
    responses=error_responses(401, 404, ok=(200, "the repository has at least one tag")),
)
async def check_tags(svc: Services, who: Caller, ns: NsPath, repo: RepoPath) -> Response:
    """200 if the repository (one the caller may see) has a tag, 404 if it has none (no body)."""
    page = await svc.tags.list_tags(who, ns, repo, PageRequest(page=1, page_size=1))
    if not page.items:
        raise NotFound("tag", "the repository has no tag", {"repository": f"{ns}/{repo}"})
    return Response(status_code=200)


@router.get(
    "/repositories/{ns}/{repo}/tags", response_model=TagPage, responses=error_responses(401, 404), deprecated=True
)
async def legacy_list_tags(
    request: Request,
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    paging: Paging,
    name: NameFilter = None,
    ordering: OrderingParam = None,
) -> TagPage:
    """Legacy path of ``GET /api/v2/namespaces/{ns}/repositories/{repo}/tags``."""
    return await _list(request, svc, who, ns, repo, paging, name, ordering)


@router.get(
    "/namespaces/{ns}/repositories/{repo}/tags/{tag}", response_model=TagModel, responses=error_responses(401, 404)
)
async def get_tag(svc: Services, who: Caller, ns: NsPath, repo: RepoPath, tag: TagName) -> TagModel:
    """One tag with its images."""
    return (await with_signatures(svc, ns, repo, [await svc.tags.get_tag(who, ns, repo, tag)]))[0]


@router.head(
    "/namespaces/{ns}/repositories/{repo}/tags/{tag}",
    status_code=200,
    response_class=Response,
    responses=error_responses(401, 404, ok=(200, "the tag exists")),
)
async def check_tag(svc: Services, who: Caller, ns: NsPath, repo: RepoPath, tag: TagName) -> Response:
    """200 if the tag exists in a repository the caller may see (no body)."""
    await svc.tags.get_tag(who, ns, repo, tag)
    return Response(status_code=200)


@router.get(
    "/repositories/{ns}/{repo}/tags/{tag}",
    response_model=TagModel,
    responses=error_responses(401, 404),
    deprecated=True,
)
async def legacy_get_tag(svc: Services, who: Caller, ns: NsPath, repo: RepoPath, tag: TagName) -> TagModel:
    """Legacy path of ``GET /api/v2/namespaces/{ns}/repositories/{repo}/tags/{tag}``."""
    return (await with_signatures(svc, ns, repo, [await svc.tags.get_tag(who, ns, repo, tag)]))[0]


_UNTAGGED = (204, "untagged (the manifest stays)")


@router.delete(
    "/namespaces/{ns}/repositories/{repo}/tags/{tag}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, ok=_UNTAGGED),
)
async def delete_tag(
    request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath, tag: TagName
) -> Response:
    """Remove the tag (admin permission on the repository, the registry's rule for deletes)."""
    await svc.tags.delete_tag(who, ns, repo, tag, source_ip=client_ip(request))
    return Response(status_code=204)


@router.delete(
    "/repositories/{ns}/{repo}/tags/{tag}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, ok=_UNTAGGED),
    deprecated=True,
)
async def legacy_delete_tag(
    request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath, tag: TagName
) -> Response:
    """Legacy path of ``DELETE /api/v2/namespaces/{ns}/repositories/{repo}/tags/{tag}``."""
    await svc.tags.delete_tag(who, ns, repo, tag, source_ip=client_ip(request))
    return Response(status_code=204)
