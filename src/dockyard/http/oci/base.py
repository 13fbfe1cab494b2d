"""Request helpers shared by the /v2 endpoints: path parameters, header parsing, common headers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request

from dockyard.core.digest import Digest
from dockyard.core.names import validate_name
from dockyard.errors import Invalid
from dockyard.http.oci.errors import OCIError
from dockyard.registry.services import Registry

API_VERSION = {"Docker-Distribution-Api-Version": "registry/2.0"}
_CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?([0-9]{1,19})-([0-9]{1,19})(?:/(?:[0-9]{1,19}|\*))?$")


def registry(request: Request) -> Registry:
    reg: Registry = request.app.state.registry
    return reg


def repo_name(request: Request) -> str:
    return validate_name(request.path_params["name"])


def digest_param(value: str) -> Digest:
    return Digest.parse(value)


def content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise OCIError("BLOB_UPLOAD_INVALID", "invalid Content-Length", {"Content-Length": raw[:40]})
    return int(raw)


def content_range(request: Request) -> tuple[int, int] | None:
    """Parse ``Content-Range: <start>-<end>`` (inclusive). Raises 416 RANGE_INVALID when malformed."""
    raw = request.headers.get("content-range")
    if raw is None:
        return None
    match = _CONTENT_RANGE_RE.match(raw.strip())
    if match is None:
        raise OCIError("RANGE_INVALID", "invalid Content-Range", {"Content-Range": raw[:80]}, status=416)
    start, end = int(match.group(1)), int(match.group(2))
    if end < start:
        raise OCIError(
            "RANGE_INVALID", "Content-Range end is before its start", {"Content-Range": raw[:80]}, status=416
        )
    return start, end


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that disconnects mid-body ends the request quietly."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect as exc:
        raise Invalid("size", "client disconnected before sending the whole body") from exc


def upload_location(name: str, upload_id: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def blob_location(name: str, digest: str) -> str:
    return f"/v2/{name}/blobs/{digest}"


def manifest_location(name: str, digest: str) -> str:
    return f"/v2/{name}/manifests/{digest}"


def next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'


def upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    """Location, Range and Docker-Upload-UUID as distribution sends them (an empty upload says 0-0)."""
    return {
        "Location": upload_location(name, upload_id),
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
        **API_VERSION,
    }
