"""Pull-through cache settings in the Hub API: which namespace proxies which upstream registry (site
administrators only; ``dockyard.proxy.manage``). The upstream password is write-only."""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import BaseModel, Field

from dockyard.http.api.deps import Services, SignedIn
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import NO_CONTENT, NsPath, Timestamp, error_responses
from dockyard.http.credentials import client_ip

router = api_router(prefix="/api/v2", tags=["proxies"])


class ProxyOut(BaseModel):
    namespace: str
    upstream_url: str
    username: str | None
    has_password: bool
    tag_ttl_seconds: int = Field(description="a cached tag is checked upstream again after this many seconds")
    created_by: str
    created_at: Timestamp


class ProxyIn(BaseModel):
    namespace: str = Field(min_length=1, max_length=255, pattern=r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")
    upstream_url: str = Field(
        min_length=1, max_length=2048, examples=["https://registry-1.docker.io", "https://ghcr.io"]
    )
    username: str | None = Field(default=None, min_length=1, max_length=255)
    password: str | None = Field(default=None, min_length=1, max_length=4096, description="stored sealed, never shown")
    tag_ttl_seconds: int = Field(default=300, ge=0, le=365 * 86400)


class ProxyChange(BaseModel):
    upstream_url: str | None = Field(default=None, min_length=1, max_length=2048, description="absent: unchanged")
    username: str | None = Field(
        default=None, min_length=1, max_length=255, description="alone: renames the stored credentials"
    )
    password: str | None = Field(default=None, min_length=1, max_length=4096, description="stored sealed, never shown")
    clear_credentials: bool = Field(default=False, description="drop the stored username and password")
    tag_ttl_seconds: int | None = Field(default=None, ge=0, le=365 * 86400, description="absent: unchanged")


class ProxyList(BaseModel):
    count: int
    results: list[ProxyOut]


@router.get("/proxies", response_model=ProxyList, responses=error_responses(401, 403, validated=False))
async def list_proxies(who: SignedIn, svc: Services) -> ProxyList:
    """The proxy namespaces and their upstreams."""
    views = await svc.proxies.list(who)
    return ProxyList(count=len(views), results=[ProxyOut.model_validate(v, from_attributes=True) for v in views])


@router.post("/proxies", status_code=201, response_model=ProxyOut, responses=error_responses(400, 401, 403, 404, 409))
async def add_proxy(body: ProxyIn, request: Request, who: SignedIn, svc: Services) -> ProxyOut:
    """Make an organization's namespace a pull-through cache of an upstream registry."""
    view = await svc.proxies.add(
        who,
        body.namespace,
        body.upstream_url,
        username=body.username,
        password=body.password,
        tag_ttl_seconds=body.tag_ttl_seconds,
        source_ip=client_ip(request),
    )
    svc.registry.access.forget_proxies()
    return ProxyOut.model_validate(view, from_attributes=True)


@router.patch("/proxies/{ns}", response_model=ProxyOut, responses=error_responses(400, 401, 403, 404))
async def change_proxy(ns: NsPath, body: ProxyChange, request: Request, who: SignedIn, svc: Services) -> ProxyOut:
    """Change a proxy's upstream, credentials or tag TTL; what is absent stays. A new upstream re-checks every
    cached tag at its next pull."""
    view = await svc.proxies.update(
        who,
        ns,
        body.upstream_url,
        username=body.username,
        password=body.password,
        clear_credentials=body.clear_credentials,
        tag_ttl_seconds=body.tag_ttl_seconds,
        source_ip=client_ip(request),
    )
    svc.registry.access.forget_proxies()
    return ProxyOut.model_validate(view, from_attributes=True)


@router.delete(
    "/proxies/{ns}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def remove_proxy(ns: NsPath, request: Request, who: SignedIn, svc: Services) -> Response:
    """Stop proxying: what the namespace cached stays as its ordinary repositories."""
    await svc.proxies.remove(who, ns, source_ip=client_ip(request))
    svc.registry.access.forget_proxies()
    return Response(status_code=204)
