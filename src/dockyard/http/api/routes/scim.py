"""SCIM 2.0 provisioning at Docker Hub's paths (``/api/v2/scim/2.0/…``, RFC 7644): the discovery documents
(public: they hold nothing of any organization) and ``Users`` — list with ``filter``/``startIndex``/``count``,
create, get, replace, and, as Dockyard extensions that identity providers (Okta, Entra ID) use, PATCH (a PatchOp)
and DELETE.

``Users`` authenticate with an organization's SCIM token as a bearer token (``routes/scim_tokens.py`` makes it) and
act on that organization's provisioned users only; any other credential is 401. Bodies and errors are
``application/scim+json`` (``scim_documents.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Path, Query, Request, Response

from dockyard.accounts.scim_attributes import parse_user
from dockyard.accounts.scim_users import MAX_COUNT
from dockyard.errors import NotFound
from dockyard.http.api import scim_documents as docs
from dockyard.http.api.deps import ScimCaller, Services
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import PRINTABLE
from dockyard.http.credentials import client_ip

router = api_router(prefix=docs.SCIM_PATH, tags=["scim"])

_SCIM_BODY: dict[str, Any] = {"content": {docs.SCIM_JSON: {"schema": {"type": "object"}}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what, "content": {docs.SCIM_JSON: {"schema": {"type": "object"}}}}
    for status, what in (
        (400, "invalid request (scimType says why: invalidFilter, invalidSyntax, invalidValue, …)"),
        (401, "no SCIM token of an organization"),
        (404, "no such resource"),
        (409, "the userName is taken (scimType uniqueness)"),
    )
}
ScimId = Annotated[str, Path(min_length=1, max_length=255, pattern=PRINTABLE)]
UserBody = Annotated[dict[str, Any], Body(media_type=docs.SCIM_JSON)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _scim(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> docs.ScimResponse:
    return docs.ScimResponse(body, status_code=status, headers=headers)


# Discovery (RFC 7644 §4)


@router.get("/ServiceProviderConfig", response_class=docs.ScimResponse)
async def service_provider_config(request: Request) -> docs.ScimResponse:
    """What Dockyard's SCIM service supports: PATCH and filters (``userName eq``), not bulk, sort, ETags or
    password changes."""
    return _scim(docs.service_provider_config(_base(request)))


@router.get("/ResourceTypes", response_class=docs.ScimResponse)
async def list_resource_types(request: Request) -> docs.ScimResponse:
    """The resource types served: ``User`` (groups are not provisioned through SCIM)."""
    types = docs.resource_types(_base(request))
    return _scim(docs.list_response(types, len(types)))


@router.get("/ResourceTypes/{name}", response_class=docs.ScimResponse, responses=_ERRORS)
async def get_resource_type(name: ScimId, request: Request) -> docs.ScimResponse:
    for item in docs.resource_types(_base(request)):
        if item["id"] == name:
            return _scim(item)
    raise NotFound("request", "no such resource type", {"name": name[:100]})


@router.get("/Schemas", response_class=docs.ScimResponse)
async def list_schemas(request: Request) -> docs.ScimResponse:
    found = docs.schemas(_base(request))
    return _scim(docs.list_response(found, len(found)))


@router.get("/Schemas/{schema_id}", response_class=docs.ScimResponse, responses=_ERRORS)
async def get_schema(schema_id: ScimId, request: Request) -> docs.ScimResponse:
    for item in docs.schemas(_base(request)):
        if item["id"] == schema_id:
            return _scim(item)
    raise NotFound("request", "no such schema", {"id": schema_id[:300]})


# Users (RFC 7644 §3)


@router.get("/Users", response_class=docs.ScimResponse, responses=_ERRORS)
async def list_users(
    request: Request,
    svc: Services,
    org: ScimCaller,
    filter_: Annotated[str | None, Query(alias="filter", max_length=1000, pattern=PRINTABLE)] = None,
    start_index: Annotated[int, Query(alias="startIndex", ge=-(2**31), le=2**31)] = 1,
    count: Annotated[int, Query(ge=-(2**31), le=2**31)] = MAX_COUNT,
) -> docs.ScimResponse:
    """The organization's provisioned users, oldest first; ``filter`` is ``userName eq "…"`` or ``externalId eq
    "…"``; ``startIndex`` is 1-based and ``count`` at most 200."""
    page = await svc.scim_users.list(org, filter_, start_index, count)
    resources = [docs.user_resource(info, _base(request)) for info in page.items]
    return _scim(docs.list_response(resources, page.total, page.start_index))


@router.post("/Users", response_class=docs.ScimResponse, status_code=201, responses=_ERRORS)
async def create_user(body: UserBody, request: Request, svc: Services, org: ScimCaller) -> docs.ScimResponse:
    """Provision a user: a Dockyard account without a password, a member of the organization when active."""
    info = await svc.scim_users.create(org, parse_user(body), client_ip(request))
    resource = docs.user_resource(info, _base(request))
    return _scim(resource, 201, {"Location": resource["meta"]["location"]})


@router.get("/Users/{user_id}", response_class=docs.ScimResponse, responses=_ERRORS)
async def get_user(user_id: ScimId, request: Request, svc: Services, org: ScimCaller) -> docs.ScimResponse:
    return _scim(docs.user_resource(await svc.scim_users.get(org, user_id), _base(request)))


@router.put("/Users/{user_id}", response_class=docs.ScimResponse, responses=_ERRORS)
async def replace_user(
    user_id: ScimId, body: UserBody, request: Request, svc: Services, org: ScimCaller
) -> docs.ScimResponse:
    """Replace the user's attributes; ``active: false`` deactivates the account and removes it from the
    organization, ``active: true`` restores both."""
    info = await svc.scim_users.replace(org, user_id, parse_user(body), client_ip(request))
    return _scim(docs.user_resource(info, _base(request)))


@router.patch("/Users/{user_id}", response_class=docs.ScimResponse, responses=_ERRORS)
async def patch_user(
    user_id: ScimId, body: UserBody, request: Request, svc: Services, org: ScimCaller
) -> docs.ScimResponse:
    """Dockyard extension to Hub's operations (RFC 7644 §3.5.2): a PatchOp with add, replace and remove of
    ``active``, ``userName``, ``externalId``, ``displayName``, ``name.givenName``, ``name.familyName`` and
    ``emails``."""
    info = await svc.scim_users.patch(org, user_id, body, client_ip(request))
    return _scim(docs.user_resource(info, _base(request)))


@router.delete("/Users/{user_id}", status_code=204, response_class=Response, responses=_ERRORS)
async def delete_user(user_id: ScimId, request: Request, svc: Services, org: ScimCaller) -> Response:
    """Dockyard extension to Hub's operations (RFC 7644 §3.6): delete the user's account, as ``dockyard user
    delete`` does."""
    await svc.scim_users.delete(org, user_id, client_ip(request))
    return Response(status_code=204)
