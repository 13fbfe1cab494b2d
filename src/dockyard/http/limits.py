"""Pure ASGI middleware bounding what one request may make the server hold: its headers and its body.

* Headers (request target included) larger than ``max_header_bytes``: 431. The HTTP protocol
  (``http.server.LimitedHttpToolsProtocol``) already refuses a head that arrives in pieces past the limit before
  it is buffered; this check covers a head that arrived in one piece, and servers other than ``dockyard serve``.
* A body larger than ``max_body_bytes``: 413 — at once when ``Content-Length`` says so, without reading any of
  it; otherwise the moment the streamed body passes the limit. The 413 goes out before the application answers,
  with ``Connection: close`` so that the server stops reading the rest; the application's ``receive`` then
  raises :class:`BodyTooLarge` (a domain ``TooLarge``, which every surface handles quietly) and whatever it
  still sends is dropped.

Routes whose bodies are content (blob uploads) or bounded by their own limit (manifests) are exempted by the
surface's ``exempt`` predicate. Each surface renders the refusal in its own error format (``render``).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.errors import TooLarge

# (status, message, limit) → the response in the surface's error format
Render = Callable[[int, str, int], Response]
_CLOSE = {"Connection": "close"}


class BodyTooLarge(TooLarge):
    """Raised into the application by ``receive`` after the 413 has been sent."""


def header_bytes(scope: Scope) -> int:
    """The size of the request target and headers, about as they were on the wire."""
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
    return size


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        render: Render,
        exempt: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_headers = max_header_bytes
        self.render = render
        self.exempt = exempt

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str, limit: int) -> None:
        response = self.render(status, message, limit)
        response.headers.update(_CLOSE)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if header_bytes(scope) > self.max_headers:
            message = f"request headers are larger than {self.max_headers} bytes"
            await self._refuse(scope, receive, send, 431, message, self.max_headers)
            return
        if self.exempt is not None and self.exempt(scope):
            await self.app(scope, receive, send)
            return
        body_message = f"request body is larger than {self.max_body} bytes"
        for name, value in scope["headers"]:
            # An invalid Content-Length never gets here: the HTTP server refuses the request itself.
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await self._refuse(scope, receive, send, 413, body_message, self.max_body)
                return
        received = 0
        started = False
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    if not started and not refused:
                        refused = True
                        await self._refuse(scope, receive, send, 413, body_message, self.max_body)
                    raise BodyTooLarge("request", body_message, {"limit": self.max_body})
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not refused:
                raise


def blob_or_manifest_write(scope: Scope) -> bool:
    """/v2 requests whose body is blob content, or a manifest (bounded by ``max_manifest_bytes`` itself)."""
    if scope["method"] not in ("POST", "PATCH", "PUT"):
        return False
    path: str = scope["path"]
    return "/blobs/uploads" in path or "/manifests/" in path
