"""HMAC signatures: sign, verify, a wrong secret or body failing, and the delivery headers."""

from __future__ import annotations

import hashlib
import hmac

from dockyard.webhooks.hmac import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    delivery_headers,
    new_secret,
    sign,
    verify,
)

BODY = b'{"event":"push"}'


def test_header_names() -> None:
    assert (SIGNATURE_HEADER, DELIVERY_HEADER, EVENT_HEADER) == (
        "X-Dockyard-Signature",
        "X-Dockyard-Delivery",
        "X-Dockyard-Event",
    )


def test_sign_is_hmac_sha256_hex() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign(b"s3cret", BODY) == f"sha256={expected}"
    assert sign("s3cret", BODY) == sign(b"s3cret", BODY)


def test_verify() -> None:
    header = sign(b"s3cret", BODY)
    assert verify(b"s3cret", BODY, header)
    assert verify(b"s3cret", BODY, f"  {header.upper().replace('SHA256=', 'sha256=')} ")  # hex case, whitespace
    assert not verify(b"wrong", BODY, header)  # a wrong secret fails
    assert not verify(b"s3cret", BODY + b" ", header)  # a changed body fails
    assert not verify(b"s3cret", BODY, header.removeprefix("sha256="))  # no algorithm prefix
    assert not verify(b"s3cret", BODY, "sha1=" + header.removeprefix("sha256="))
    assert not verify(b"s3cret", BODY, None)
    assert not verify(b"s3cret", BODY, "")
    assert not verify(b"s3cret", BODY, "sha256=ünïcode")


def test_new_secret() -> None:
    first, second = new_secret(), new_secret()
    assert first != second
    assert len(first) == 43
    assert first.isascii()


def test_delivery_headers() -> None:
    headers = delivery_headers(
        body=BODY,
        content_type="application/json",
        delivery_id="d-1",
        event="push",
        secret="k",
        extra={"Authorization": "Bearer t", "x-dockyard-signature": "forged"},
    )
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Authorization": "Bearer t",
        "X-Dockyard-Delivery": "d-1",
        "X-Dockyard-Event": "push",
        "X-Dockyard-Signature": sign("k", BODY),
    }
    unsigned = delivery_headers(body=BODY, content_type="application/json", delivery_id="d", event="push", secret=None)
    assert SIGNATURE_HEADER not in unsigned
