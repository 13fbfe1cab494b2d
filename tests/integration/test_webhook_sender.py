"""``webhooks.sender.deliver`` against a real HTTP(S) receiver on loopback: outcomes, Retry-After, redirects not
followed, timeouts, the 4 KiB response cap, Host and TLS server name kept while connecting to the checked address,
and the SSRF guard refusing loopback unless the policy allows it."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.webhooks.hmac import delivery_headers, verify
from dockyard.webhooks.payloads import build_payload
from dockyard.webhooks.sender import RETRY_AFTER_CAP_SECONDS, DeliveryRequest, deliver, new_client
from dockyard.webhooks.ssrf import AddressPolicy
from tests.support.webhook_receiver import Reply, TestCertificates, WebhookReceiver
from tests.unit.webhooks.factories import make_view

# No server and no database: one pass (the embedded one) covers it.
pytestmark = pytest.mark.embedded_only

LOOPBACK = AddressPolicy(["127.0.0.1"])
SECRET = b"receiver-secret"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        r.script("/ok", Reply(200, body=b"thanks"))
        r.script("/error", Reply(500, body=b"boom"))
        r.script("/busy", Reply(429, headers={"Retry-After": "7"}))
        r.script("/unavailable", Reply(503, headers={"Retry-After": "86400"}))
        r.script("/gone", Reply(410))
        r.script("/bad", Reply(400, body=b"bad payload"))
        r.script("/redirect", Reply(302, headers={"Location": "/ok-after-redirect"}))
        r.script("/slow", Reply(200, delay=3.0))
        r.script("/huge", Reply(200, stream_bytes=64 * 1024 * 1024))
        yield r


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client() as c:
        yield c


def signed_request(url: str, *, event: str = "push", delivery_id: str = "delivery-1") -> DeliveryRequest:
    payload = build_payload(make_view(event=event), "dockyard")
    headers = delivery_headers(
        body=payload.body,
        content_type=payload.content_type,
        delivery_id=delivery_id,
        event=event,
        secret=SECRET,
    )
    return DeliveryRequest(url=url, body=payload.body, headers=headers)


async def test_200_is_delivered_signed_and_intact(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    request = signed_request(receiver.url("/ok"), delivery_id="d-200")
    result = await deliver(client, request, LOOPBACK)
    assert result.outcome == "delivered"
    assert result.status == 200
    assert result.body == b"thanks"
    assert result.error is None
    assert result.retry_after is None
    assert result.address == "127.0.0.1"
    assert result.duration_ms > 0
    assert result.headers["content-length"] == "6"
    (got,) = [r for r in receiver.requests_to("/ok") if r.headers.get("x-dockyard-delivery") == "d-200"]
    assert got.method == "POST"
    assert got.body == request.body
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-dockyard-event"] == "push"
    assert got.headers["accept-encoding"] == "identity"
    assert got.headers["user-agent"].startswith("Dockyard-Hookshot/")
    assert verify(SECRET, got.body, got.headers["x-dockyard-signature"])
    assert not verify(b"wrong secret", got.body, got.headers["x-dockyard-signature"])
    assert json.loads(got.body)["event"] == "push"
    assert result.request_headers["Host"] == f"127.0.0.1:{receiver.port}"


async def test_500_is_retried(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/error")), LOOPBACK)
    assert (result.outcome, result.status, result.body) == ("retry", 500, b"boom")
    assert result.error is not None
    assert result.error.startswith("HTTP 500")
    assert result.retry_after is None


async def test_429_honours_retry_after(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/busy")), LOOPBACK)
    assert (result.outcome, result.status, result.retry_after) == ("retry", 429, 7.0)


async def test_retry_after_is_capped(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/unavailable")), LOOPBACK)
    assert (result.outcome, result.status, result.retry_after) == ("retry", 503, RETRY_AFTER_CAP_SECONDS)


async def test_410_is_gone(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/gone")), LOOPBACK)
    assert (result.outcome, result.status) == ("gone", 410)
    assert result.error is not None
    assert "gone" in result.error


async def test_400_fails_without_retry(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/bad")), LOOPBACK)
    assert (result.outcome, result.status, result.body) == ("failed", 400, b"bad payload")
    assert result.retry_after is None


async def test_redirect_fails_and_is_not_followed(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/redirect")), LOOPBACK)
    assert (result.outcome, result.status) == ("failed", 302)
    assert result.error == "HTTP 302: redirect to /ok-after-redirect not followed"
    assert receiver.requests_to("/ok-after-redirect") == []


async def test_read_timeout_is_retried(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/slow")), LOOPBACK, read_timeout=0.3)
    assert result.outcome == "retry"
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("timeout")
    assert 250 <= result.duration_ms < 2500


async def test_total_timeout_bounds_the_attempt(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/slow")), LOOPBACK, read_timeout=5, total_timeout=0.3)
    assert result.outcome == "retry"
    assert result.error == "timeout: no complete response within 0.3 s"
    assert result.duration_ms < 2500


async def test_only_4_kib_of_a_huge_response_is_read(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    result = await deliver(client, signed_request(receiver.url("/huge")), LOOPBACK)
    assert (result.outcome, result.status) == ("delivered", 200)
    assert result.body == b"x" * 4096
    assert result.headers["content-length"] == str(64 * 1024 * 1024)
    assert result.duration_ms < 2000  # 64 MiB were not downloaded

    smaller = await deliver(client, signed_request(receiver.url("/huge")), LOOPBACK, max_response_bytes=100)
    assert len(smaller.body) == 100


async def test_loopback_refused_unless_allowed(receiver: WebhookReceiver, client: httpx.AsyncClient) -> None:
    before = len(receiver.received)
    for url in (receiver.url("/ok"), receiver.url("/ok", host="localhost")):
        result = await deliver(client, signed_request(url), AddressPolicy())
        assert result.outcome == "failed"
        assert result.status is None
        assert result.error is not None
        assert result.error.startswith("refused:")
        assert "loopback" in result.error
    result = await deliver(client, signed_request(receiver.url("/ok", host="0.0.0.0")), LOOPBACK)
    assert result.outcome == "failed"
    assert result.error is not None
    assert "unspecified" in result.error
    assert len(receiver.received) == before  # nothing reached the receiver


async def test_scheme_refused(client: httpx.AsyncClient) -> None:
    result = await deliver(client, DeliveryRequest("ftp://127.0.0.1/x", b"{}"), LOOPBACK)
    assert result.outcome == "failed"
    assert result.error is not None
    assert "only http and https" in result.error


async def test_connection_refused_is_retried(client: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the delivery: nobody listens
    result = await deliver(client, signed_request(f"http://127.0.0.1:{port}/x"), LOOPBACK)
    assert result.outcome == "retry"
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("connect to 127.0.0.1")


async def test_unresolvable_name_is_retried(client: httpx.AsyncClient) -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        return []

    result = await deliver(client, signed_request("http://hook.invalid/x"), LOOPBACK, resolver=nxdomain)
    assert result.outcome == "retry"
    assert result.error is not None
    assert result.error.startswith("dns:")


async def test_name_keeps_its_host_header_and_next_address_is_tried(
    receiver: WebhookReceiver, client: httpx.AsyncClient
) -> None:
    async def dns(host: str, port: int) -> list[str]:
        assert host == "hook.test"
        return ["127.0.0.2", "127.0.0.1"]  # the receiver listens on 127.0.0.1 only

    policy = AddressPolicy(["127.0.0.0/8"])
    request = signed_request(receiver.url("/ok", host="hook.test"), delivery_id="d-name")
    result = await deliver(client, request, policy, resolver=dns)
    assert result.outcome == "delivered"
    assert result.address == "127.0.0.1"
    (got,) = [r for r in receiver.requests_to("/ok") if r.headers.get("x-dockyard-delivery") == "d-name"]
    assert got.headers["host"] == f"hook.test:{receiver.port}"

    refused = await deliver(client, request, AddressPolicy(["127.0.0.1"]), resolver=dns)
    assert refused.outcome == "failed"
    assert refused.error is not None
    assert "127.0.0.2" in refused.error


async def test_https_verifies_the_name_and_sends_it_as_sni(tmp_path: Path) -> None:
    certs = TestCertificates.create(tmp_path, ["hook.test"])

    async def dns(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    with WebhookReceiver(tls=certs.server_context()) as tls_receiver:
        async with new_client(verify=certs.client_context()) as tls_client:
            url = tls_receiver.url("/secure", host="hook.test")
            result = await deliver(tls_client, signed_request(url), AddressPolicy(["hook.test"]), resolver=dns)
            assert result.outcome == "delivered", result.error
            (got,) = tls_receiver.requests_to("/secure")
            assert got.server_name == "hook.test"
            assert got.headers["host"] == f"hook.test:{tls_receiver.port}"

            wrong = tls_receiver.url("/secure", host="other.test")  # same address, a name the certificate lacks
            mismatch = await deliver(tls_client, signed_request(wrong), AddressPolicy(["other.test"]), resolver=dns)
            assert mismatch.outcome == "retry"
            assert mismatch.error is not None
            assert "certificate" in mismatch.error.lower()
            assert len(tls_receiver.requests_to("/secure")) == 1


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
async def test_ipv6_loopback(client: httpx.AsyncClient) -> None:
    with WebhookReceiver(host="::1") as v6:
        refused = await deliver(client, signed_request(v6.url("/ok")), LOOPBACK)
        assert refused.outcome == "failed"
        assert refused.error is not None
        assert "loopback" in refused.error
        result = await deliver(client, signed_request(v6.url("/ok")), AddressPolicy(["::1"]))
        assert result.outcome == "delivered", result.error
        (got,) = v6.requests_to("/ok")
        assert got.headers["host"] == f"[::1]:{v6.port}"


async def test_the_documented_receiver_verifies_signatures(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ten-line receiver in docs/webhooks.md accepts a signed delivery and rejects a wrong secret."""
    docs = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    match = re.search(r"A complete receiver in Python's standard library:\n\n```python\n(.*?)```", docs, re.S)
    assert match is not None
    code = match.group(1).replace(
        'HTTPServer(("", 8000), Hook).serve_forever()', 'server = HTTPServer(("127.0.0.1", 0), Hook)'
    )
    monkeypatch.setenv("WEBHOOK_SECRET", "documented-secret")
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), namespace)  # noqa: S102 (our own documentation)
    server = namespace["server"]
    namespace["Hook"].log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        body = b'{"event":"push"}'
        outcomes = []
        for secret in ("documented-secret", "another-secret"):
            headers = delivery_headers(
                body=body, content_type="application/json", delivery_id="d", event="push", secret=secret
            )
            result = await deliver(client, DeliveryRequest(url, body, headers), LOOPBACK)
            outcomes.append((result.status, result.outcome))
        assert outcomes == [(204, "delivered"), (401, "failed")]
    finally:
        server.shutdown()
        server.server_close()
