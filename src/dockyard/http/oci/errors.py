"""The spec's error-code table and the single renderer of ``{"errors": [...]}`` bodies.

Domain errors map to (code, status) by their class and subject; anything unmapped is ``UNKNOWN``/500 with a
request id, logged with its traceback and never shown to the client.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.responses import Response

from dockyard import errors as e

log = logging.getLogger("dockyard.http")

# code → (HTTP status, message)
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "the operation is unsupported"),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "UNAVAILABLE": (503, "service unavailable"),  # distribution's code: here, a proxy's upstream is down
    "UNKNOWN": (500, "unknown error"),
}

_NOT_FOUND = {
    "blob": "BLOB_UNKNOWN",
    "manifest": "MANIFEST_UNKNOWN",
    "upload": "BLOB_UPLOAD_UNKNOWN",
    "repository": "NAME_UNKNOWN",
    "tag": "MANIFEST_UNKNOWN",
}
_INVALID = {
    "name": "NAME_INVALID",
    "digest": "DIGEST_INVALID",
    "manifest": "MANIFEST_INVALID",
    "manifest_blob": "MANIFEST_BLOB_UNKNOWN",
    "tag": "TAG_INVALID",
    "size": "SIZE_INVALID",
    "upload": "BLOB_UPLOAD_INVALID",
    "range": "BLOB_UPLOAD_INVALID",
}


class OCIError(Exception):
    """An error raised directly by the HTTP layer with an explicit code (and optionally status/headers)."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or CODES[code][1])
        self.code = code
        self.message = message or CODES[code][1]
        self.detail = detail
        self.status = status or CODES[code][0]
        self.headers = headers or {}


def from_domain(exc: e.DomainError) -> OCIError:
    """Translate a domain error to the spec's code and status."""
    if isinstance(exc, e.NotFound):
        return OCIError(_NOT_FOUND.get(exc.subject, "NAME_UNKNOWN"), exc.message, exc.detail)
    if isinstance(exc, e.RangeNotSatisfiable):
        end = exc.current_end
        headers = {"Range": f"0-{max(end - 1, 0)}"} if end >= 0 else {}
        return OCIError(
            "BLOB_UPLOAD_INVALID" if exc.subject != "range" else "RANGE_INVALID",
            exc.message,
            exc.detail,
            status=416,
            headers=headers,
        )
    if isinstance(exc, e.TooLarge):
        return OCIError("SIZE_INVALID", exc.message, exc.detail, status=413)
    if isinstance(exc, e.Invalid):
        # Content has its own code; anything else invalid (a parameter, a setting) is UNSUPPORTED, still a 400.
        return OCIError(_INVALID.get(exc.subject, "UNSUPPORTED"), exc.message, exc.detail, status=400)
    if isinstance(exc, e.Conflict):
        return OCIError(
            "BLOB_UPLOAD_INVALID" if exc.subject == "upload" else "UNSUPPORTED",
            exc.message,
            exc.detail,
            status=409,
        )
    if isinstance(exc, e.Unsupported):
        return OCIError("UNSUPPORTED", exc.message, exc.detail)
    if isinstance(exc, e.Denied):
        return OCIError("DENIED", exc.message, exc.detail)
    if isinstance(exc, e.Unauthorized):
        return OCIError("UNAUTHORIZED", exc.message, exc.detail)
    if isinstance(exc, e.RateLimited):
        return OCIError("TOOMANYREQUESTS", exc.message, exc.detail, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, e.Unavailable):
        return OCIError("UNAVAILABLE", exc.message, exc.detail)
    return OCIError("UNKNOWN")


def render(err: OCIError, *, head: bool = False) -> Response:
    # Every entry carries all three fields of the spec's example body; "detail" is {} when there is none.
    detail = {} if err.detail is None else err.detail
    entry: dict[str, Any] = {"code": err.code, "message": err.message, "detail": detail}
    body = json.dumps({"errors": [entry]}, separators=(",", ":")).encode()
    headers = dict(err.headers)
    if head:
        # HEAD responses carry no body; say how long the error body would have been.
        headers["Content-Length"] = str(len(body))
        return Response(b"", status_code=err.status, headers=headers, media_type="application/json")
    return Response(body, status_code=err.status, headers=headers, media_type="application/json")
