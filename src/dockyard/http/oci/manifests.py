"""``/v2/<name>/manifests/<reference>``: GET, HEAD, PUT (with ``?tag=``), DELETE; Accept negotiation."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from dockyard.core import mediatypes as mt
from dockyard.core.digest import Digest
from dockyard.core.names import validate_tag
from dockyard.errors import Invalid, TooLarge
from dockyard.http.credentials import client_ip
from dockyard.http.oci.auth import principal, requires
from dockyard.http.oci.base import API_VERSION, body_stream, manifest_location, registry, repo_name
from dockyard.http.oci.errors import OCIError
from dockyard.http.oci.policies import check_policies
from dockyard.http.oci.proxying import STALE_WARNING, upstream_of
from dockyard.repos.ratelimits import PullRateLimiter

MAX_TAGS_PER_PUT = 100


def _reference(request: Request) -> str:
    reference: str = request.path_params["reference"]
    if ":" in reference:
        Digest.parse(reference)
    else:
        validate_tag(reference)
    return reference


def _lookup_reference(request: Request) -> str:
    """The reference of a GET or HEAD: a tag that cannot exist names no manifest — 404 ``MANIFEST_UNKNOWN``, as
    distribution answers and the conformance suite expects (a PUT of it is 400 ``TAG_INVALID``; a malformed
    digest stays 400 ``DIGEST_INVALID``)."""
    reference: str = request.path_params["reference"]
    if ":" in reference:
        Digest.parse(reference)
        return reference
    try:
        return validate_tag(reference)
    except Invalid:
        raise OCIError("MANIFEST_UNKNOWN", "manifest unknown to registry", {"reference": reference[:200]}) from None


def _accepted(request: Request) -> set[str] | None:
    """Media types the client accepts, or None when it accepts anything."""
    values = request.headers.getlist("accept")
    if not values:
        return None
    types = {mt.strip_parameters(part) for value in values for part in value.split(",")}
    types.discard("")
    if not types or "*/*" in types:
        return None
    return types


def _rate_limit(request: Request) -> dict[str, str]:
    """Docker Hub's pull rate limit: a GET counts (a HEAD never does, nor is it refused); over the limit 429
    ``TOOMANYREQUESTS`` with ``Retry-After``. Returns the ``ratelimit-*`` headers (none when unlimited)."""
    limiter: PullRateLimiter | None = getattr(request.app.state, "ratelimits", None)
    if limiter is None:
        return {}
    decision = limiter.take(principal(request), client_ip(request), count=request.method == "GET")
    if not decision.allowed:
        raise OCIError(
            "TOOMANYREQUESTS",
            "You have reached your pull rate limit. Retry after the window resets, or authenticate for a higher limit.",
            {"limit": decision.limit, "window": decision.window, "retryAfter": decision.retry_after},
            headers={"Retry-After": str(decision.retry_after), **decision.headers(), **API_VERSION},
        )
    return decision.headers()


@requires("pull")
async def get_manifest(request: Request) -> Response:
    name = repo_name(request)
    reference = _lookup_reference(request)
    limits = _rate_limit(request)
    stale = False
    proxied = await upstream_of(request, name)
    if proxied is not None:
        cache, upstream = proxied
        cached = await cache.manifest(upstream, name, reference)
        manifest, stale = cached.manifest, cached.stale
    else:
        manifest = await registry(request).manifests.get(name, reference)
    accepted = _accepted(request)
    if accepted is not None and manifest.media_type not in accepted and manifest.media_type in mt.INDEXES:
        # A client that cannot read an index must not be handed one (distribution does the same).
        raise OCIError(
            "MANIFEST_UNKNOWN",
            f"manifest is an index ({manifest.media_type}) and the Accept header does not allow it",
            {"reference": reference, "mediaType": manifest.media_type},
        )
    headers = {"Docker-Content-Digest": manifest.digest, "ETag": f'"{manifest.digest}"', **API_VERSION, **limits}
    if stale:
        headers["Warning"] = STALE_WARNING
    await check_policies(request, name, reference, manifest, headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(manifest.content))
        return Response(b"", 200, headers, manifest.media_type)
    pulls = getattr(request.app.state, "pulls", None)  # hub.pulls.PullRecorder: in memory, no I/O
    if pulls is not None:
        pulls.record(name, None if ":" in reference else reference)
    return Response(manifest.content, 200, headers, manifest.media_type)


async def _read_manifest_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge("size", f"manifest is larger than {limit} bytes", {"limit": limit})
    parts: list[bytes] = []
    total = 0
    async for chunk in body_stream(request):
        total += len(chunk)
        if total > limit:
            raise TooLarge("size", f"manifest is larger than {limit} bytes", {"limit": limit})
        parts.append(chunk)
    return b"".join(parts)


@requires("pull", "push")
async def put_manifest(request: Request) -> Response:
    name = repo_name(request)
    reference = _reference(request)
    tags = tuple(request.query_params.getlist("tag"))
    if tags and ":" not in reference:
        raise OCIError("TAG_INVALID", "tag query parameters are only allowed when pushing by digest")
    if len(tags) > MAX_TAGS_PER_PUT:
        raise OCIError("TAG_INVALID", f"at most {MAX_TAGS_PER_PUT} tags per request", status=414)
    for tag in tags:
        validate_tag(tag)
    reg = registry(request)
    body = await _read_manifest_body(request, reg.ctx.settings.max_manifest_bytes)
    result = await reg.manifests.put(
        name,
        reference,
        body,
        request.headers.get("content-type", ""),
        tuple(dict.fromkeys(tags)),
        actor=principal(request).audit_name,
        source_ip=client_ip(request),
    )
    headers = {
        "Location": manifest_location(name, result.digest),
        "Docker-Content-Digest": result.digest,
        "Content-Length": "0",
        **API_VERSION,
    }
    if result.subject:
        headers["OCI-Subject"] = result.subject
    response = Response(b"", 201, headers)
    for tag in tags:
        response.headers.append("OCI-Tag", tag)
    return response


@requires("delete")
async def delete_manifest(request: Request) -> Response:
    name = repo_name(request)
    reference = _reference(request)
    await registry(request).manifests.delete(
        name, reference, principal(request).audit_name, source_ip=client_ip(request)
    )
    return Response(b"", 202, {"Content-Length": "0", **API_VERSION})
