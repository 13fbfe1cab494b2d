"""Looking inside images (``dockyard.layers``): the merged filesystem of a tag's (or digest's) platform image —
``GET /api/v2/repositories/{ns}/{repo}/tags/{tag}/files?path=…`` lists a directory or stats a file,
``…/files/content?path=…`` streams a regular file — and ``GET /api/v2/repositories/{ns}/{repo}/diff?from=&to=``
compares two images. The same under ``…/manifests/{digest}/files`` for a digest.

Authorized as a pull: a repository the caller may not pull is a 404, like a missing one. ``platform``
(``os/arch[/variant]``) picks an index's image; the default is ``linux/amd64``, else the first.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Query
from fastapi.responses import StreamingResponse

from dockyard.authz.principal import Principal
from dockyard.http.api.deps import ApiServices, Caller, Services
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import PRINTABLE, NsPath, RepoPath, error_responses
from dockyard.http.api.schemas.files import (
    ConfigChangeModel,
    DiffModel,
    FileChangeModel,
    FileCountsModel,
    FileEntryModel,
    ImageRefModel,
    LayerDiffModel,
    LayerRefModel,
    PathModel,
)
from dockyard.layers.images import ImagePlatform
from dockyard.layers.merged import FileEntry
from dockyard.layers.service import PathInfo

router = api_router(prefix="/api/v2", tags=["files"])

TagName = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE, description="tag name")]
DigestPath = Annotated[str, Path(min_length=1, max_length=200, pattern=PRINTABLE, description="manifest digest")]
FilePath = Annotated[
    str, Query(min_length=1, max_length=4096, pattern=PRINTABLE, description="absolute path in the image")
]
PlatformParam = Annotated[
    str | None, Query(max_length=100, pattern=PRINTABLE, description="os/arch[/variant] of an index's image")
]
_ERRORS = error_responses(400, 401, 404)
_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"description": "the file's bytes", "content": {"application/octet-stream": {}}}
}


def _entry(entry: FileEntry) -> FileEntryModel:
    return FileEntryModel(**asdict(entry))


def _image(image: ImagePlatform) -> ImageRefModel:
    return ImageRefModel(
        reference=image.reference,
        digest=image.digest,
        platform=image.platform,
        config_digest=image.config_digest,
        layers=[LayerRefModel(digest=x.digest, size=x.size, media_type=x.media_type) for x in image.layers],
    )


def _path_model(info: PathInfo) -> PathModel:
    return PathModel(
        image=_image(info.image),
        entry=_entry(info.entry),
        entries=None if info.children is None else [_entry(child) for child in info.children],
    )


async def _lookup(
    svc: ApiServices, who: Principal, ns: str, repo: str, reference: str, path: str, platform: str | None
) -> PathModel:
    return _path_model(await svc.files.lookup(who, ns, repo, reference, path, platform=platform))


async def _content(
    svc: ApiServices, who: Principal, ns: str, repo: str, reference: str, path: str, platform: str | None
) -> StreamingResponse:
    found = await svc.files.open_file(who, ns, repo, reference, path, platform=platform)
    headers = {
        "Content-Length": str(found.entry.size),
        # Never rendered by a browser as a page, whatever the file holds.
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.entry.name, safe='')}",
        "Docker-Content-Digest": found.image.digest,
    }
    if found.entry.sha256:
        headers["ETag"] = f'"sha256:{found.entry.sha256}"'
    return StreamingResponse(found.chunks, media_type="application/octet-stream", headers=headers)


@router.get("/repositories/{ns}/{repo}/tags/{tag}/files", response_model=PathModel, responses=_ERRORS)
async def tag_files(
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    tag: TagName,
    path: FilePath = "/",
    platform: PlatformParam = None,
) -> PathModel:
    """A directory of the tag's image with its entries, or one file's metadata (``entries`` null)."""
    return await _lookup(svc, who, ns, repo, tag, path, platform)


@router.get(
    "/repositories/{ns}/{repo}/tags/{tag}/files/content",
    response_class=StreamingResponse,
    responses={**_CONTENT, **_ERRORS},
)
async def tag_file_content(
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    tag: TagName,
    path: FilePath,
    platform: PlatformParam = None,
) -> StreamingResponse:
    """The bytes of a regular file of the tag's image (400 for a directory or a symlink)."""
    return await _content(svc, who, ns, repo, tag, path, platform)


@router.get("/repositories/{ns}/{repo}/manifests/{digest}/files", response_model=PathModel, responses=_ERRORS)
async def digest_files(
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    digest: DigestPath,
    path: FilePath = "/",
    platform: PlatformParam = None,
) -> PathModel:
    """As ``…/tags/{tag}/files``, for an image (or index) named by digest."""
    return await _lookup(svc, who, ns, repo, digest, path, platform)


@router.get(
    "/repositories/{ns}/{repo}/manifests/{digest}/files/content",
    response_class=StreamingResponse,
    responses={**_CONTENT, **_ERRORS},
)
async def digest_file_content(
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    digest: DigestPath,
    path: FilePath,
    platform: PlatformParam = None,
) -> StreamingResponse:
    """As ``…/tags/{tag}/files/content``, for an image (or index) named by digest."""
    return await _content(svc, who, ns, repo, digest, path, platform)


@router.get("/repositories/{ns}/{repo}/diff", response_model=DiffModel, responses=_ERRORS)
async def diff(
    svc: Services,
    who: Caller,
    ns: NsPath,
    repo: RepoPath,
    before: Annotated[str, Query(alias="from", min_length=1, max_length=200, pattern=PRINTABLE)],
    after: Annotated[str, Query(alias="to", min_length=1, max_length=200, pattern=PRINTABLE)],
    platform: PlatformParam = None,
) -> DiffModel:
    """How image ``to`` differs from image ``from`` (tags or digests): config, layers, files."""
    result = await svc.files.diff(who, ns, repo, before, after, platform=platform)
    return DiffModel(
        before=_image(result.before),
        after=_image(result.after),
        config=[ConfigChangeModel(field=c.field, before=c.before, after=c.after) for c in result.config],
        layers=LayerDiffModel(
            shared=list(result.layers_shared), removed=list(result.layers_removed), added=list(result.layers_added)
        ),
        counts=FileCountsModel(added=result.added, removed=result.removed, changed=result.changed),
        files=[
            FileChangeModel(
                path=f.path,
                change=f.change,
                before=_entry(f.before) if f.before else None,
                after=_entry(f.after) if f.after else None,
                fields=list(f.fields),
            )
            for f in result.files
        ],
        truncated=result.truncated,
    )
