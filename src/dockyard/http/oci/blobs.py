"""``/v2/<name>/blobs/<digest>``: GET and HEAD (with Range), DELETE. A manifest digest of the repository is
served too (as distribution does), under the same trust policy as ``/manifests/``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from dockyard.core.ranges import parse_range
from dockyard.errors import RangeNotSatisfiable
from dockyard.http.oci.auth import principal, requires
from dockyard.http.oci.base import API_VERSION, digest_param, registry, repo_name
from dockyard.http.oci.errors import OCIError
from dockyard.http.oci.policies import VULNERABILITY_HEADER, check_policies, manifest_behind_blob
from dockyard.http.oci.proxying import upstream_of
from dockyard.http.oci.trust import VERIFIED_HEADER
from dockyard.proxy.flights import Teed
from dockyard.registry.blobs import File, Redirect
from dockyard.registry.manifests import StoredManifest

OCTET = "application/octet-stream"


class _WholeFileResponse(FileResponse):
    """The whole blob, read 1 MiB at a time (64 KiB makes downloads CPU-bound), or by ``pathsend`` if the
    server offers it. Ranges were handled before: this response ignores the request's Range header."""

    chunk_size = 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)


def _teed(teed: Teed, digest: str) -> Response:
    """A blob arriving from a proxy's upstream, sent while it is stored (the whole blob: a Range is ignored)."""
    headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"', "Accept-Ranges": "bytes", **API_VERSION}
    if teed.size is not None:
        headers["Content-Length"] = str(teed.size)
    return StreamingResponse(teed.chunks, 200, headers, OCTET)


@requires("pull")
async def get_blob(request: Request) -> Response:
    name = repo_name(request)
    digest = digest_param(request.path_params["digest"])
    reg = registry(request)
    head = request.method == "HEAD"
    proxied = await upstream_of(request, name)
    if proxied is not None:
        cache, upstream = proxied
        found = await cache.blob(upstream, name, digest, head=head)
        if isinstance(found, Teed):
            return _teed(found, str(digest))
        info = found
    else:
        info = await reg.blobs.stat(name, digest)
    headers = {
        "Docker-Content-Digest": info.digest,
        "ETag": f'"{info.digest}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "max-age=31536000",
        **API_VERSION,
    }
    # A manifest's bytes are the manifest whichever route hands them out: the pull policies decide here too.
    if info.manifest_content is not None:
        manifest: StoredManifest | None = StoredManifest(info.digest, info.media_type or OCTET, info.manifest_content)
    else:
        manifest = await manifest_behind_blob(request, name, digest)
    if manifest is not None:
        await check_policies(request, name, info.digest, manifest, headers)
        if VERIFIED_HEADER in headers or VULNERABILITY_HEADER in headers:  # answers change: no year-long caching
            headers["Cache-Control"] = "no-cache"
    try:
        byte_range = parse_range(request.headers.get("range"), info.size)
    except RangeNotSatisfiable as exc:
        raise OCIError(
            "RANGE_INVALID",
            exc.message,
            exc.detail,
            status=416,
            headers={"Content-Range": f"bytes */{info.size}"},
        ) from exc
    if info.manifest_content is not None:
        body = info.manifest_content
        media_type = info.media_type or OCTET
        if byte_range is not None:
            start, end = byte_range
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
            return Response(b"" if head else body[start:end], 206, headers, media_type)
        if head:
            headers["Content-Length"] = str(info.size)
            return Response(b"", 200, headers, media_type)
        return Response(body, 200, headers, media_type)
    if head:
        if byte_range is not None:
            start, end = byte_range
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
            headers["Content-Length"] = str(end - start)
            return Response(b"", 206, headers, OCTET)
        headers["Content-Length"] = str(info.size)
        return Response(b"", 200, headers, OCTET)
    opened = await reg.blobs.open(info, byte_range)
    if isinstance(opened, Redirect):
        return Response(b"", 307, {"Location": opened.url, **headers})
    if isinstance(opened, File):  # only for the whole blob
        return _WholeFileResponse(opened.path, headers=headers, media_type=OCTET, stat_result=opened.stat)
    if byte_range is not None:
        start, end = byte_range
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{info.size}"
        headers["Content-Length"] = str(end - start)
        return StreamingResponse(opened.chunks, 206, headers, OCTET)
    headers["Content-Length"] = str(info.size)
    return StreamingResponse(opened.chunks, 200, headers, OCTET)


@requires("delete")
async def delete_blob(request: Request) -> Response:
    name = repo_name(request)
    digest = digest_param(request.path_params["digest"])
    await registry(request).blobs.unlink(name, digest, principal(request).audit_name)
    return Response(b"", 202, {"Content-Length": "0", **API_VERSION})
