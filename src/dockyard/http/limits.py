"""What one request may make the server hold: its headers and its body (enforced by ``dockyard.http.middleware.Front``).

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
from starlette.types import Scope

from dockyard.errors import TooLarge

# (status, message, limit) → the response in the surface's error format
Render = Callable[[int, str, int], Response]


class BodyTooLarge(TooLarge):
    """Raised into the application by ``receive`` after the 413 has been sent."""


def header_bytes(scope: Scope) -> int:
    """The size of the request target and headers, about as they were on the wire."""
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    for name, value in scope["headers"]:
        size += len(name) + len(value) + 4
    return size


def blob_or_manifest_write(scope: Scope) -> bool:
    """/v2 requests whose body is blob content, or a manifest (bounded by ``max_manifest_bytes`` itself)."""
    if scope["method"] not in ("POST", "PATCH", "PUT"):
        return False
    path: str = scope["path"]
    return "/blobs/uploads" in path or "/manifests/" in path
