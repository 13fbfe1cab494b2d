"""How the Hub API describes itself: the OpenAPI ``securitySchemes`` (a bearer JWT from ``POST /api/v2/auth/token``
or ``/api/v2/users/login``, a personal access token as a bearer token, HTTP Basic with a password, PAT or robot
secret) applied to each operation, and the interactive documentation at ``/api/v2/docs`` — Swagger UI served from
the ``swagger-ui-bundle`` package on this server (no CDN), under a policy that allows this origin only.

An operation's ``security`` is derived from its dependencies: one that needs a signed-in caller
(``deps.signed_in``) lists the three schemes; one that takes any caller (``deps.caller``) lists them and ``{}``
(anonymous allowed); one that reads no credentials (the sign-in endpoints, which take them in the body; SCIM's
discovery documents) has none; SCIM's ``Users`` (``deps.scim_org``) take an organization's SCIM token only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from dockyard.http.api.deps import caller, scim_org, signed_in

DOCS_PATH = "/api/v2/docs"
SCHEMES: dict[str, dict[str, Any]] = {
    "bearerJWT": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from POST /api/v2/auth/token or POST /api/v2/users/login (docs/auth.md).",
    },
    "personalAccessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "dy_pat_…",
        "description": "A personal access token (dy_pat_…) sent as the bearer token; its scopes cap the account.",
    },
    "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "User name and password, personal access token or robot secret (robot name ORG+NAME).",
    },
}
_ALL: list[dict[str, list[str]]] = [{name: []} for name in SCHEMES]
SCIM_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "dy_scim_…",
    "description": "An organization's SCIM token (POST /api/v2/orgs/{org}/scim-token): SCIM's Users only.",
}

# Swagger UI runs its own script and sets style attributes; everything else stays as locked down as the API.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _uses(dependant: Dependant, function: Any) -> bool:
    return any(d.call is function or _uses(d, function) for d in dependant.dependencies)


def operation_security(route: APIRoute) -> list[dict[str, list[str]]]:
    if _uses(route.dependant, scim_org):
        return [{"scimToken": []}]
    if _uses(route.dependant, signed_in):
        return list(_ALL)
    if _uses(route.dependant, caller):
        return [*_ALL, {}]
    return []


def install_security_schemes(app: FastAPI) -> None:
    """Make ``app.openapi()`` carry ``components.securitySchemes`` and each operation's ``security``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {**SCHEMES, "scimToken": SCIM_SCHEME}
        operations = {
            (method.lower(), route.path_format): operation_security(route)
            for route in _api_routes(app.routes)
            for method in route.methods or ()
        }
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                security = operations.get((method, path))
                if security is not None:
                    operation["security"] = security
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            found.extend(_api_routes(nested.routes))
        elif isinstance(route, APIRoute):
            found.append(route)
    return found


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Dockyard Hub API</title>
<link rel="stylesheet" href="{docs}/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{docs}/static/swagger-ui-bundle.js"></script>
<script src="{docs}/init.js"></script>
</body>
</html>
"""

_INIT = """window.ui = SwaggerUIBundle({{
  url: "{openapi}",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
}});
"""


def install_docs(app: FastAPI, swagger_ui_dir: Path) -> None:
    """Serve the interactive documentation at ``/api/v2/docs`` from ``swagger_ui_dir`` (the package's files)."""
    openapi_url = app.openapi_url or "/api/v2/openapi.json"
    headers = {"Content-Security-Policy": DOCS_POLICY, "Cache-Control": "no-cache"}

    async def page(request: Request) -> Response:
        return HTMLResponse(_PAGE.format(docs=DOCS_PATH), headers=headers)

    async def init(request: Request) -> Response:
        return Response(_INIT.format(openapi=openapi_url), media_type="text/javascript", headers=headers)

    app.add_route(DOCS_PATH, page, methods=["GET"], name="docs", include_in_schema=False)
    app.add_route(f"{DOCS_PATH}/init.js", init, methods=["GET"], name="docs_init", include_in_schema=False)
    app.mount(f"{DOCS_PATH}/static", StaticFiles(directory=swagger_ui_dir), name="docs_static")
