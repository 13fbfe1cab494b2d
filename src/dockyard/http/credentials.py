"""The request's credentials as both surfaces read them: the ``Authorization`` header parsed once
(``parse_authorization``) and the client's address (``client_ip``, already resolved through trusted proxies by
``http.proxies``). ``/v2`` (``http.oci.auth``, ``http.oci.token``) and ``/api`` (``http.api.deps``) decide what
the credentials are worth; this module only says what was sent."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

Scheme = Literal["none", "basic", "bearer", "other"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the ``Authorization`` header holds. ``raw`` is everything after the scheme, stripped (a bearer token,
    or Basic's base64 payload). For Basic, ``username`` is ``None`` when the payload is not base64 of
    ``user:password`` in UTF-8."""

    scheme: Scheme
    raw: str = ""
    username: str | None = None
    password: str = ""

    @property
    def malformed_basic(self) -> bool:
        return self.scheme == "basic" and self.username is None


def parse_authorization(header: str) -> Credentials:
    """Parse an ``Authorization`` header value (the scheme is case-insensitive; an empty header is ``none``)."""
    scheme, _, rest = header.partition(" ")
    scheme, rest = scheme.lower(), rest.strip()
    if scheme == "":
        return Credentials("none")
    if scheme == "bearer":
        return Credentials("bearer", rest)
    if scheme == "basic":
        username, password = decode_basic(rest)
        return Credentials("basic", rest, username, password)
    return Credentials("other", rest)


def decode_basic(payload: str) -> tuple[str | None, str]:
    """``(username, password)`` from Basic's base64 payload; ``(None, "")`` when it is malformed."""
    try:
        decoded = base64.b64decode(payload, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None, ""
    username, sep, password = decoded.partition(":")
    if not sep:
        return None, ""
    return username, password


def client_ip(request: Request) -> str:
    """The client's address (the proxy middleware has already replaced a trusted proxy's with the client's)."""
    return request.client.host if request.client is not None else ""
