"""SBOM documents of an image (``dockyard.inventory``): ``GET /api/v2/repositories/{ns}/{repo}/tags/{tag}/sbom``
and ``…/manifests/{digest}/sbom``, ``?format=spdx`` (SPDX 2.3 JSON, the default) or ``cyclonedx`` (CycloneDX 1.6
JSON); ``platform`` (``os/arch[/variant]``) picks an index's image as the file routes do.

Authorized exactly as a pull (``ImageFiles.image`` → ``layers.images.resolve_image``): a repository the caller
may not pull is a 404, like a missing one. The inventory is computed in the background after a push; until it
is ready the answer is **202 Accepted** with a problem+json body (``urn:dockyard:inventory:pending``) and
``Retry-After`` — an image pushed before inventories existed is queued by that first request. An image whose
layers cannot be read (corrupt, malformed package database) answers **422** (``urn:dockyard:inventory:failed``)
with the recorded error.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from starlette.responses import Response

from dockyard.authz.principal import Principal
from dockyard.http.api.deps import ApiServices, Caller, Services
from dockyard.http.api.problems import problem
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import PRINTABLE, NsPath, RepoPath, error_responses
from dockyard.inventory.documents import CYCLONEDX_MEDIA_TYPE
from dockyard.inventory.model import SPDX_MEDIA_TYPE
from dockyard.inventory.sbom import SbomFormat, image_sbom, render_sbom

router = api_router(prefix="/api/v2", tags=["sbom"])

TagName = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE, description="tag name")]
DigestPath = Annotated[str, Path(min_length=1, max_length=200, pattern=PRINTABLE, description="manifest digest")]
Format = Annotated[Literal["spdx", "cyclonedx"], Query(description="spdx (SPDX 2.3 JSON) or cyclonedx (1.6 JSON)")]
PlatformParam = Annotated[
    str | None, Query(max_length=100, pattern=PRINTABLE, description="os/arch[/variant] of an index's image")
]
RETRY_AFTER_SECONDS = 5
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the SBOM document",
        "content": {SPDX_MEDIA_TYPE: {}, CYCLONEDX_MEDIA_TYPE: {}},
    },
    202: {"description": "the inventory is being computed: retry after Retry-After seconds"},
    422: {"description": "the image's inventory failed (the recorded error)"},
    **error_responses(400, 401, 404),
}


async def _sbom(
    request: Request,
    svc: ApiServices,
    who: Principal,
    ns: str,
    repo: str,
    reference: str,
    format_: SbomFormat,
    platform: str | None,
) -> Response:
    image = await svc.files.image(who, ns, repo, reference, platform=platform)
    sbom = await image_sbom(svc.inventory, image)
    if sbom.failed:
        return problem(
            422,
            "Unprocessable Content",
            f"the image's inventory cannot be computed: {sbom.state.error}",
            type_="urn:dockyard:inventory:failed",
            digest=image.digest,
        )
    if sbom.subject is None:
        return problem(
            202,
            "Accepted",
            "the image's inventory is being computed; retry later",
            type_="urn:dockyard:inventory:pending",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            digest=image.digest,
        )
    body, media_type = await render_sbom(sbom.subject, format_, str(request.base_url).rstrip("/"))
    return Response(body, media_type=media_type, headers={"Docker-Content-Digest": image.digest})


@router.get("/repositories/{ns}/{repo}/tags/{tag}/sbom", response_class=Response, responses=_RESPONSES)
async def tag_sbom(
    request: Request,
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    tag: TagName,
    format: Format = "spdx",
    platform: PlatformParam = None,
) -> Response:
    """The SBOM of the tag's image (SPDX 2.3 or CycloneDX 1.6 JSON)."""
    return await _sbom(request, svc, who, ns, repo, tag, format, platform)


@router.get("/repositories/{ns}/{repo}/manifests/{digest}/sbom", response_class=Response, responses=_RESPONSES)
async def digest_sbom(
    request: Request,
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    digest: DigestPath,
    format: Format = "spdx",
    platform: PlatformParam = None,
) -> Response:
    """As ``…/tags/{tag}/sbom``, for an image (or index) named by digest."""
    return await _sbom(request, svc, who, ns, repo, digest, format, platform)
