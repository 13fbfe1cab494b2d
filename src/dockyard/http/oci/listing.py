"""``/v2/``, ``/v2/_catalog``, ``/v2/<name>/tags/list`` and ``/v2/<name>/referrers/<digest>``."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.core import mediatypes as mt
from dockyard.core.names import validate_tag
from dockyard.http.oci.auth import guard, requires
from dockyard.http.oci.base import API_VERSION, digest_param, next_link, registry, repo_name
from dockyard.http.oci.errors import OCIError


def _json(body: Any, headers: dict[str, str] | None = None, media_type: str = "application/json") -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")).encode(), 200, {**API_VERSION, **(headers or {})}, media_type
    )


def _page_params(request: Request, maximum: int) -> tuple[int, str | None]:
    raw_n = request.query_params.get("n")
    if raw_n is None or raw_n == "":
        n = maximum
    elif raw_n.isdigit() and len(raw_n) <= 9:
        n = min(int(raw_n), maximum)
    else:
        raise OCIError("PAGINATION_NUMBER_INVALID", "n must be a non-negative integer", {"n": raw_n[:40]})
    last = request.query_params.get("last") or None
    return n, last


async def base(request: Request) -> Response:
    """API version check; with authentication on, anonymous callers are challenged (``docker login`` relies
    on it to find the token realm) and bad credentials refused."""
    caller = await guard(request).authenticate_any(request)
    if caller.is_anonymous:
        raise guard(request).challenge(request, None)
    return _json({})


@requires("pull")
async def tags_list(request: Request) -> Response:
    name = repo_name(request)
    reg = registry(request)
    n, last = _page_params(request, reg.ctx.settings.tags_max_entries)
    if last is not None:
        validate_tag(last)
    page = await reg.listing.tags(name, n, last)
    headers = {"Link": next_link(f"/v2/{name}/tags/list", n, page.items[-1])} if page.more and page.items else {}
    return _json({"name": name, "tags": page.items}, headers)


async def catalog(request: Request) -> Response:
    """Repositories the caller may see. Anonymous callers are challenged first, so that clients holding
    credentials use them; an anonymous token lists the public repositories."""
    reg = registry(request)
    n, last = _page_params(request, reg.ctx.settings.catalog_max_entries)
    scope = "registry:catalog:*"
    caller = await guard(request).authenticate_any(request, scope)
    if caller.is_anonymous and not request.headers.get("authorization"):
        raise guard(request).challenge(request, scope)
    page = await reg.listing.catalog(n, last, caller)
    headers = {"Link": next_link("/v2/_catalog", n, page.items[-1])} if page.more and page.items else {}
    return _json({"repositories": page.items}, headers)


@requires("pull")
async def referrers(request: Request) -> Response:
    name = repo_name(request)
    digest = digest_param(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType") or None
    descriptors = await registry(request).listing.referrers(name, str(digest), artifact_type)
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": descriptors}
    return _json(body, headers, mt.OCI_INDEX)
