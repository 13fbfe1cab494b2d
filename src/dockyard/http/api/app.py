"""The Hub API application: FastAPI (routes, request validation, the OpenAPI document at
``/api/v2/openapi.json`` with its security schemes, the interactive docs at ``/api/v2/docs``: ``docs.py``) with
problem+json errors; paths are accepted with or without a trailing slash, as on Docker Hub. Mounted by the
composition root for ``/api/`` and ``/v1/`` (``served_api``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard import __version__
from dockyard.http.api import problems
from dockyard.http.api.deps import SERVICES, ApiServices
from dockyard.http.api.docs import install_docs, install_security_schemes
from dockyard.http.api.routes import (
    access_tokens,
    audit,
    auth,
    builds,
    collaborators,
    files,
    immutability,
    invites,
    lifecycle,
    org_tokens,
    orgs,
    proxies,
    replication,
    repositories,
    robots,
    sbom,
    scim,
    scim_tokens,
    search,
    stars,
    tags,
    teams,
    trust,
    two_factor,
    users,
    vulns,
    webhooks,
)
from dockyard.http.api.routing import AcceptTrailingSlash, LimitedJSONRoute

# One module per resource, in the order their routes are matched.
ROUTE_MODULES = (
    auth,
    two_factor,
    users,
    access_tokens,
    orgs,
    teams,
    collaborators,
    robots,
    org_tokens,
    scim_tokens,
    scim,
    invites,
    repositories,
    immutability,
    tags,
    files,
    sbom,
    stars,
    audit,
    webhooks,
    builds,
    trust,
    vulns,
    lifecycle,
    proxies,
    replication,
    search,
)


def api_app() -> FastAPI:
    """A new Hub API app; a server serves it through ``served_api``, which gives it the server's services."""
    app = FastAPI(
        title="Dockyard Hub API",
        version=__version__,
        description="Docker Hub-compatible REST API of Dockyard. Errors are RFC 9457 problem+json.",
        openapi_url="/api/v2/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    for module in ROUTE_MODULES:
        if module.router.route_class is not LimitedJSONRoute:  # JSON bodies must be parsed depth-limited
            raise TypeError(f"{module.__name__}.router must be made by http.api.routing.api_router")
        app.include_router(module.router)
    install_security_schemes(app)
    install_docs(app, Path(swagger_ui_bundle.swagger_ui_path))
    app.router.redirect_slashes = False  # AcceptTrailingSlash routes the path without it instead
    app.add_middleware(AcceptTrailingSlash)
    return app


_served: FastAPI | None = None
_served_lock = threading.Lock()


class _WithServices:
    """Hands ``services`` to every request (in its scope's state, where ``deps.services`` finds them)."""

    def __init__(self, app: ASGIApp, services: ApiServices) -> None:
        self.app, self.services = app, services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})[SERVICES] = self.services
        await self.app(scope, receive, send)


def served_api(services: ApiServices) -> ASGIApp:
    """The Hub API as a server serves it: this process's one FastAPI app, with ``services`` given to each of its
    requests. FastAPI sets an app's routes up on its first request (the parameters' pydantic models of all ~190
    routes: about half a second), anew for each app: servers in one process (the test suite runs many) share the
    app and keep their own services."""
    global _served
    with _served_lock:
        if _served is None:
            _served = api_app()
        return _WithServices(_served, services)


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every operation the app serves, through included routers (FastAPI keeps
    them nested), without the OpenAPI document itself."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            nested = getattr(route, "original_router", None)
            if nested is not None:
                walk(nested.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute):
                # path_format: ``{repo:path}`` is documented (and matched by the matrix) as ``{repo}``.
                found.update((method, prefix + route.path_format) for method in route.methods or ())

    walk(app.routes, "")
    return found
