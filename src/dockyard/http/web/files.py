"""The filesystem browser: the merged filesystem of one platform image of a tag (or a manifest digest in the tag's
place), ``/r/<ns>/<repo>/tags/<tag>/files/<path…>`` — a directory's entries (name, size, mode, owner, symlink
target, the layer each came from, linked to that layer's row on the tag page), breadcrumbs, a file's text preview
— and ``…/download/<path…>``, a regular file's bytes streamed as an attachment.

Everything is read through ``ImageFiles`` (``dockyard.layers.service``), which authorizes as a pull: a repository
the visitor may not pull is a 404, as on its other pages. ``?platform=os/arch[/variant]`` picks an index's image.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from dockyard.core.digest import looks_like_digest
from dockyard.errors import Invalid
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.preview import MAX_PREVIEW, Preview, mode_string, owner, read_capped, render
from dockyard.http.web.render import anchor_hex, page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.layers.images import ImagePlatform
from dockyard.layers.merged import FileEntry
from dockyard.layers.tarstream import Kind

MAX_PATH = 4096
MAX_PLATFORM = 100


@dataclass(frozen=True, slots=True)
class LayerLink:
    number: int  # 1-based, bottom first, among the image's layers with content
    digest: str
    href: str | None  # its row on the tag page (None when browsing by digest: there is no tag page)


@dataclass(frozen=True, slots=True)
class Row:
    entry: FileEntry
    href: str
    mode: str
    owner: str
    layer: LayerLink | None


@dataclass(frozen=True, slots=True)
class Crumb:
    name: str
    href: str


class Links:
    """The URLs of one browsed image: pages of its paths, downloads, its layers on the tag page."""

    def __init__(self, namespace: str, name: str, reference: str, platform: str | None, image: ImagePlatform):
        self.base = f"/r/{quote(namespace)}/{quote(name)}/tags/{quote(reference, safe=':')}"
        self.query = f"?{urlencode({'platform': platform})}" if platform else ""
        self.tag_page = None if looks_like_digest(reference) else f"{home_of(namespace, name)}/tags/{quote(reference)}"
        self.layers = {
            digest: LayerLink(number, digest, self._layer_href(image, digest))
            for number, digest in enumerate(image.layer_digests, start=1)
        }

    def _layer_href(self, image: ImagePlatform, layer: str) -> str | None:
        if self.tag_page is None:
            return None
        return f"{self.tag_page}#layer-{anchor_hex(image.digest)}-{anchor_hex(layer)}"

    def files(self, path: str) -> str:
        return f"{self.base}/files{quote(path)}{self.query}"

    def download(self, path: str) -> str:
        return f"{self.base}/download{quote(path)}{self.query}"

    def crumbs(self, path: str) -> list[Crumb]:
        crumbs = [Crumb("/", self.files("/"))]
        walked = ""
        for part in [p for p in path.split("/") if p]:
            walked += f"/{part}"
            crumbs.append(Crumb(part, self.files(walked)))
        return crumbs


def platform_param(request: Request) -> str | None:
    """The ``?platform=os/arch[/variant]`` of a page that shows one platform image of a tag (None: the default)."""
    value = request.query_params.get("platform", "").strip()
    return value[:MAX_PLATFORM] or None


def _path(request: Request) -> str:
    path = "/" + str(request.path_params.get("path", ""))
    if len(path) > MAX_PATH:
        raise Invalid("request", "the path is too long")
    return path


def symlink_target(path: str, link: str) -> str:
    """Where a symlink at ``path`` points, as an absolute path in the image (``..`` stops at the root)."""
    joined = link if link.startswith("/") else posixpath.join(posixpath.dirname(path), link)
    return "/" + posixpath.normpath("/" + joined).lstrip("/")


async def _platforms(request: Request, namespace: str, name: str, reference: str) -> list[tuple[str, str]]:
    """An index tag's platforms as (label, link) for the chooser; none for an image or a digest."""
    if looks_like_digest(reference):
        return []
    services = services_of(request)
    current = await visit_of(request)
    tag = await services.tags.get_tag(current.principal, namespace, name, reference)
    labels = ["/".join(p for p in (i.os, i.architecture, i.variant) if p) for i in tag.images]
    if len(labels) < 2:
        return []
    path = quote(_path(request))
    base = f"/r/{quote(namespace)}/{quote(name)}/tags/{quote(reference)}/files{path}"
    return [(label, f"{base}?{urlencode({'platform': label})}") for label in dict.fromkeys(labels)]


async def _preview(request: Request, namespace: str, name: str, reference: str, entry: FileEntry) -> Preview:
    if entry.kind not in (Kind.FILE, Kind.HARDLINK):
        return Preview(None, "")
    if entry.size > MAX_PREVIEW:
        return Preview(None, f"This file is larger than {MAX_PREVIEW // 1024} KiB; download it to read it.")
    services = services_of(request)
    current = await visit_of(request)
    found = await services.files.open_file(
        current.principal, namespace, name, reference, entry.path, platform=platform_param(request)
    )
    return render(entry.name, await read_capped(found.chunks))


async def browse(request: Request) -> Response:
    """A directory's listing or a file's page."""
    services = services_of(request)
    current = await visit_of(request)
    namespace, name, reference = request.path_params["ns"], request.path_params["repo"], request.path_params["tag"]
    platform = platform_param(request)
    view = await services.repositories.get(current.principal, namespace, name)
    info = await services.files.lookup(current.principal, namespace, name, reference, _path(request), platform=platform)
    links = Links(namespace, name, reference, platform, info.image)
    entry = info.entry
    rows = [
        Row(
            child,
            links.files(child.path),
            mode_string(child),
            owner(child),
            links.layers.get(child.layer) if child.layer else None,
        )
        for child in info.children or ()
    ]
    target = symlink_target(entry.path, entry.link) if entry.kind == Kind.SYMLINK and entry.link else None
    return page(
        request,
        current,
        "files.html",
        title=f"{entry.path} · {view.full_name}:{reference}",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view, None if looks_like_digest(reference) else reference),
        tab="tags",
        reference=reference,
        image=info.image,
        entry=entry,
        mode=mode_string(entry),
        owner=owner(entry),
        layer=links.layers.get(entry.layer) if entry.layer else None,
        rows=rows,
        crumbs=links.crumbs(entry.path),
        links=links,
        target=(target, links.files(target)) if target else None,
        preview=await _preview(request, namespace, name, reference, entry),
        platforms=await _platforms(request, namespace, name, reference),
        platform=info.image.platform,
    )


async def download(request: Request) -> Response:
    """A regular file's bytes, streamed from its layer as an attachment (never rendered by the browser)."""
    services = services_of(request)
    current = await visit_of(request)
    namespace, name, reference = request.path_params["ns"], request.path_params["repo"], request.path_params["tag"]
    found = await services.files.open_file(
        current.principal, namespace, name, reference, _path(request), platform=platform_param(request)
    )
    headers = {
        "Content-Length": str(found.entry.size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(found.entry.name, safe='')}",
        "Cache-Control": "no-store",
    }
    return StreamingResponse(found.chunks, media_type="application/octet-stream", headers=headers)
