"""Delivery signatures and headers (GitHub's model): ``X-Dockyard-Signature: sha256=<hex HMAC-SHA256 of the raw
body>`` keyed with the webhook's secret, ``X-Dockyard-Delivery`` (a unique id per delivery, repeated unchanged on
each retry so receivers can drop duplicates) and ``X-Dockyard-Event`` (the event name).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from dockyard import __version__

SIGNATURE_HEADER = "X-Dockyard-Signature"
DELIVERY_HEADER = "X-Dockyard-Delivery"
EVENT_HEADER = "X-Dockyard-Event"
SIGNATURE_PREFIX = "sha256="
USER_AGENT = f"Dockyard-Hookshot/{__version__}"


def _key(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def sign(secret: bytes | str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``body`` (the exact bytes sent) keyed with ``secret``."""
    return SIGNATURE_PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify(secret: bytes | str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` (the received ``X-Dockyard-Signature``) is the signature of ``body``. Constant time."""
    if not header:
        return False
    received = header.strip()
    if not received.startswith(SIGNATURE_PREFIX):
        return False
    expected = sign(secret, body).encode("ascii")
    candidate = (SIGNATURE_PREFIX + received[len(SIGNATURE_PREFIX) :].lower()).encode("utf-8", "replace")
    return hmac.compare_digest(expected, candidate)


def new_secret() -> str:
    """A fresh webhook secret: 32 random bytes, URL-safe base64 (43 characters). Shown to its creator once."""
    return secrets.token_urlsafe(32)


def delivery_headers(
    *,
    body: bytes,
    content_type: str,
    delivery_id: str,
    event: str,
    secret: bytes | str | None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The request headers of one delivery: content type, user agent, delivery id, event name, the signature when
    the webhook has a secret, then ``extra`` (e.g. the webhook's static auth header; it cannot replace the
    signature, delivery or event headers)."""
    headers: dict[str, str] = {"Content-Type": content_type, "User-Agent": USER_AGENT}
    reserved = {SIGNATURE_HEADER.lower(), DELIVERY_HEADER.lower(), EVENT_HEADER.lower()}
    for name, value in (extra or {}).items():
        if name.lower() not in reserved:
            headers[name] = value
    headers[DELIVERY_HEADER] = delivery_id
    headers[EVENT_HEADER] = event
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return headers
