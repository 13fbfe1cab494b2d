"""``/v2/<name>/blobs/uploads/``: start (session, monolithic, mount), PATCH, closing PUT, status, cancel."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.core.digest import check_algorithm
from dockyard.core.names import validate_name
from dockyard.http.credentials import client_ip
from dockyard.http.oci.auth import guard, principal, requires
from dockyard.http.oci.base import (
    API_VERSION,
    blob_location,
    body_stream,
    content_length,
    content_range,
    digest_param,
    registry,
    repo_name,
    upload_headers,
)
from dockyard.http.oci.errors import OCIError
from dockyard.registry.uploads import ChunkSpec


def _created(name: str, digest: str) -> Response:
    return Response(
        b"",
        201,
        {
            "Location": blob_location(name, digest),
            "Docker-Content-Digest": digest,
            "Content-Length": "0",
            **API_VERSION,
        },
    )


def _chunk_spec(request: Request) -> ChunkSpec:
    length = content_length(request)
    crange = content_range(request)
    if crange is None:
        return ChunkSpec(None, length)
    start, end = crange
    if length is not None and length != end - start + 1:
        raise OCIError(
            "BLOB_UPLOAD_INVALID",
            "Content-Range does not match Content-Length",
            {"Content-Range": f"{start}-{end}", "Content-Length": length},
            status=416,
        )
    return ChunkSpec(start, end - start + 1)


async def _may_pull(request: Request, source: str) -> bool:
    return await guard(request).may_also(request, principal(request), source, "pull")


def _upload_id(request: Request) -> str:
    upload_id: str = request.path_params["upload_id"]
    if len(upload_id) != 32 or not all(c in "0123456789abcdef" for c in upload_id):
        raise OCIError("BLOB_UPLOAD_UNKNOWN", detail={"upload": upload_id[:64]})
    return upload_id


@requires("pull", "push")
async def start_upload(request: Request) -> Response:
    name = repo_name(request)
    reg = registry(request)
    params = request.query_params
    actor = principal(request).audit_name
    mount = params.get("mount")
    if mount is not None:
        digest = digest_param(mount)
        source = params.get("from")
        # Mounting needs pull on the source; without it the client gets a plain upload session (as distribution
        # does), which reveals nothing about the source repository.
        if (
            source
            and await _may_pull(request, validate_name(source))
            and await reg.blobs.mount(name, digest, source, actor, source_ip=client_ip(request)) is not None
        ):
            return _created(name, str(digest))
    elif params.get("digest") is not None:
        digest = digest_param(params["digest"])
        await reg.uploads.monolithic(
            name,
            digest,
            body_stream(request),
            ChunkSpec(None, content_length(request)),
            actor,
            source_ip=client_ip(request),
        )
        return _created(name, str(digest))
    algorithm = check_algorithm(params.get("digest-algorithm", "sha256"))
    state = await reg.uploads.start(name, algorithm, actor, principal(request).account_id)
    headers = upload_headers(name, state.id, 0)
    headers["Content-Length"] = "0"
    min_chunk = reg.ctx.settings.chunk_min_length
    if min_chunk:
        headers["OCI-Chunk-Min-Length"] = str(min_chunk)
    return Response(b"", 202, headers)


@requires("pull", "push")
async def patch_upload(request: Request) -> Response:
    name = repo_name(request)
    upload_id = _upload_id(request)
    state = await registry(request).uploads.append(name, upload_id, body_stream(request), _chunk_spec(request))
    return Response(b"", 202, {**upload_headers(name, upload_id, state.size), "Content-Length": "0"})


@requires("pull", "push")
async def put_upload(request: Request) -> Response:
    name = repo_name(request)
    upload_id = _upload_id(request)
    raw_digest = request.query_params.get("digest")
    if raw_digest is None:
        raise OCIError("DIGEST_INVALID", "the closing PUT needs a digest query parameter")
    digest = digest_param(raw_digest)
    await registry(request).uploads.complete(
        name,
        upload_id,
        digest,
        body_stream(request),
        _chunk_spec(request),
        principal(request).audit_name,
        source_ip=client_ip(request),
    )
    return _created(name, str(digest))


@requires("pull", "push")
async def get_upload(request: Request) -> Response:
    name = repo_name(request)
    upload_id = _upload_id(request)
    state = await registry(request).uploads.status(name, upload_id)
    return Response(b"", 204, {**upload_headers(name, upload_id, state.size), "Content-Length": "0"})


@requires("pull", "push")
async def delete_upload(request: Request) -> Response:
    name = repo_name(request)
    upload_id = _upload_id(request)
    await registry(request).uploads.cancel(name, upload_id)
    return Response(b"", 204, {"Content-Length": "0", **API_VERSION})
