"""Pure ASGI middleware: request ids, the HTTP Prometheus metrics (``dockyard.http.metrics``) and the structured
access log; security headers.

Every request is counted under a *named* route label, never a path: the registry's (``base``, ``catalog``,
``token``, ``tags``, ``manifests``, ``blobs``, ``uploads``, ``referrers``) from the path, before the request runs
(the upload gauge needs it); the Hub API's and the web hub's from the route that answered (``api.<endpoint>``,
``web.<page>``, ``ops.<endpoint>``), which the routers leave in the ASGI scope; ``<surface>.unmatched`` when no
route matched (404s, and Hub API paths with a trailing slash the route does not take)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.http.metrics import Metrics
from dockyard.logs import FIELDS

access_log = logging.getLogger("dockyard.access")

Surface = Literal["oci", "api", "web"]


def route_label(path: str) -> str:
    """The label of a registry (``/v2``) request path."""
    if path in ("/v2", "/v2/"):
        return "base"
    if path == "/v2/_catalog":
        return "catalog"
    if path == "/v2/token":
        return "token"
    if path.endswith("/tags/list"):
        return "tags"
    if "/blobs/uploads" in path:
        return "uploads"
    if "/blobs/" in path:
        return "blobs"
    if "/manifests/" in path:
        return "manifests"
    if "/referrers/" in path:
        return "referrers"
    return "oci.unmatched"


def matched_route_label(scope: Scope, surface: Surface) -> str:
    """The label of a Hub API or web request, from the route the routers matched (left in ``scope``)."""
    route = scope.get("route")
    name = getattr(route, "name", None)
    if not name:
        return f"{surface}.unmatched"
    if name.startswith("ops."):
        return str(name)
    return f"{surface}.{name}"


def _header(scope: Scope, wanted: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == wanted:
            return str(value.decode("latin-1"))[:256]
    return None


def _repository(scope: Scope) -> str | None:
    """The repository a request named, from the route's path parameters (``/v2/<name>/…``, ``…/{ns}/{repo}``)."""
    params: dict[str, Any] = scope.get("path_params") or {}
    if "name" in params:
        return str(params["name"])
    namespace = params.get("namespace", params.get("ns"))
    repository = params.get("repository", params.get("repo"))
    if namespace is not None and repository is not None:
        return f"{namespace}/{repository}"
    return None


class ObservabilityMiddleware:
    """Request id, metrics and the access log of one surface (``oci``: /v2; ``api``: /api and /v1; ``web``: the
    rest). The access log's record (``dockyard.access``, one JSON line through ``dockyard.logs``) names the
    request, the route, the status, sizes and time, the client, the actor (who authenticated, when a check ran),
    the user agent and the repository."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, surface: Surface, log_requests: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.surface: Surface = surface
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]  # as asked (a surface may normalise the scope's, e.g. a trailing slash)
        route = route_label(path) if self.surface == "oci" else ""
        method = scope["method"]
        status = 500
        received = 0
        sent = 0
        upload = route == "uploads" and method in ("PATCH", "PUT", "POST")

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        if upload:
            self.metrics.uploads_in_progress.inc()
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            if upload:
                self.metrics.uploads_in_progress.dec()
            elapsed = time.perf_counter() - start
            if self.surface != "oci":
                route = matched_route_label(scope, self.surface)
            m = self.metrics
            m.requests.labels(route, method, str(status)).inc()
            m.latency.labels(route, method).observe(elapsed)
            if received:
                m.bytes_in.labels(route).inc(received)
            if sent:
                m.bytes_out.labels(route).inc(sent)
            if self.log_requests:
                client = scope.get("client")
                principal = scope["state"].get("principal")
                access_log.info(
                    "request",
                    extra={
                        FIELDS: {
                            "request_id": request_id,
                            "method": method,
                            "path": path[:512],
                            "route": route,
                            "status": status,
                            "bytes_in": received,
                            "bytes_out": sent,
                            "duration_ms": round(elapsed * 1000, 2),
                            "remote": client[0] if client else None,
                            "actor": getattr(principal, "name", None) or None,
                            "user_agent": _header(scope, b"user-agent"),
                            "repository": _repository(scope),
                        }
                    },
                )


# Dockyard serves JSON, manifests and blobs, never a page: nothing it sends may be sniffed into HTML, load
# anything or be framed.
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)
_SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    """Adds ``X-Content-Type-Options: nosniff`` and a deny-all ``Content-Security-Policy`` to every HTTP
    response (a response that sets its own keeps it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers} & _SECURITY_HEADER_NAMES
                headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, secured_send)


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
            return str(value.decode())
    return uuid.uuid4().hex[:16]
