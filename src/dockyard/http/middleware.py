"""``Front``, the one pure-ASGI wrapper in front of each surface: request ids, request limits, security headers,
the surface's error boundary, the HTTP Prometheus metrics (``dockyard.http.metrics``) and the structured access log.

Every request is counted under a *named* route label, never a path: the registry's (``base``, ``catalog``,
``token``, ``tags``, ``manifests``, ``blobs``, ``uploads``, ``referrers``) from the path, before the request runs
(the upload gauge needs it); the Hub API's and the web hub's from the route that answered (``api.<endpoint>``,
``web.<page>``, ``ops.<endpoint>``), which the routers leave in the ASGI scope; ``<surface>.unmatched`` when no
route matched (404s, and Hub API paths with a trailing slash the route does not take)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.http.limits import BodyTooLarge, Render, header_bytes
from dockyard.http.metrics import Metrics
from dockyard.logs import FIELDS

access_log = logging.getLogger("dockyard.access")
log = logging.getLogger("dockyard.http")
_CLOSE = {"Connection": "close"}

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


class Front:
    """Everything a surface's requests pass through before its router, as one pure-ASGI frame with one ``send``
    and one ``receive`` wrapper (``oci``: /v2; ``api``: /api and /v1; ``web``: the rest):

    * a request id (``X-Request-Id`` of the request if sane, else a new one) in ``scope["state"]`` and on the
      response;
    * the request limits (``dockyard.http.limits``): headers past ``max_header_bytes`` get 431; a body past
      ``max_body_bytes`` 413, unless ``exempt(scope)``; each rendered by ``render`` in the surface's format;
    * the security headers (``SECURITY_HEADERS``) on every response, refusals included;
    * with ``boundary``, the surface's error boundary: an exception raised before the response started is
      turned into the response ``boundary(exc, scope)`` returns (one raised after it started is logged);
    * the HTTP metrics and the access log's record (``dockyard.access``, one JSON line through
      ``dockyard.logs``): the request, the route, the status, sizes and time, the client, the actor (who
      authenticated, when a check ran), the user agent and the repository.

    One frame instead of a middleware per concern: each layer cost a coroutine call and a closure per message on
    every request (docs/performance.md).
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        *,
        surface: Surface,
        log_requests: bool = True,
        max_body_bytes: int,
        max_header_bytes: int,
        render: Render,
        exempt: Callable[[Scope], bool] | None = None,
        boundary: Callable[[Exception, Scope], Response] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.surface: Surface = surface
        self.log_requests = log_requests
        self.max_body = max_body_bytes
        self.max_headers = max_header_bytes
        self.render = render
        self.exempt = exempt
        self.boundary = boundary

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
        started = False  # the application sent its response's start
        refused = False  # a 413 went out instead of the application's response
        upload = route == "uploads" and method in ("PATCH", "PUT", "POST")
        limited = self.exempt is None or not self.exempt(scope)
        body_message = f"request body is larger than {self.max_body} bytes"

        async def send_out(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers} & _SECURITY_HEADER_NAMES
                headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        async def refuse(status: int, message: str, limit: int) -> None:
            response = self.render(status, message, limit)
            response.headers.update(_CLOSE)
            await response(scope, receive, send_out)

        async def app_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if limited and received > self.max_body:
                    if not started and not refused:
                        refused = True
                        await refuse(413, body_message, self.max_body)
                    raise BodyTooLarge("request", body_message, {"limit": self.max_body})
            return message

        async def app_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 went out; whatever the application still sends is dropped
            if message["type"] == "http.response.start":
                started = True
            await send_out(message)

        if upload:
            self.metrics.uploads_in_progress.inc()
        try:
            if header_bytes(scope) > self.max_headers:
                message = f"request headers are larger than {self.max_headers} bytes"
                await refuse(431, message, self.max_headers)
            elif limited and _declared_length(scope) > self.max_body:
                await refuse(413, body_message, self.max_body)
            else:
                try:
                    await self.app(scope, app_receive, app_send)
                except Exception as exc:
                    if refused and isinstance(exc, BodyTooLarge):
                        pass
                    elif self.boundary is None:
                        raise
                    elif started:
                        log.warning(
                            "request failed after the response started: %s", exc, extra={"request_id": request_id}
                        )
                    else:
                        await self.boundary(exc, scope)(scope, receive, app_send)
        finally:
            if upload:
                self.metrics.uploads_in_progress.dec()
            self._observe(scope, route, path, method, status, received, sent, time.perf_counter() - start)

    def _observe(
        self, scope: Scope, route: str, path: str, method: str, status: int, received: int, sent: int, elapsed: float
    ) -> None:
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
                        "request_id": scope["state"]["request_id"],
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


def _declared_length(scope: Scope) -> int:
    """The request's ``Content-Length``, or -1 (an invalid one never gets here: the HTTP server refuses it)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return -1


# Dockyard serves JSON, manifests and blobs, never a page: nothing it sends may be sniffed into HTML, load
# anything or be framed.
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)
_SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
            return str(value.decode())
    return uuid.uuid4().hex[:16]
