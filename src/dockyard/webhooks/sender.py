"""Send one webhook request and classify what happened: the network half of a delivery attempt.

``deliver`` resolves the URL's host and checks every address with the SSRF guard on every call, then connects to a
checked address itself — the request keeps the original ``Host`` header and TLS server name, and the certificate
is verified against the host name — so the connection always goes where the check said. Redirects are never
followed, at most ``max_response_bytes`` of the response body are read (raw, as sent: never decompressed), and the
whole attempt is bounded in time.

Outcomes (the runner decides what to do with them; ``docs/webhooks.md`` has the same table):

================================  ===========  ======================================================
response                          ``outcome``  meaning
================================  ===========  ======================================================
2xx                               delivered    done
410 Gone                          gone         the receiver says this hook is gone: deactivate it
408, 429, 5xx                     retry        try again later (``retry_after`` from ``Retry-After``)
network error, timeout, no DNS    retry        try again later
3xx                               failed       redirects are not followed; no retry
other 4xx (400, 401, 403, 404…)   failed       the receiver rejected the request; no retry
refused by the SSRF guard         failed       ``error`` says why (scheme, address and its kind)
================================  ===========  ======================================================
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from dockyard.webhooks.hmac import USER_AGENT
from dockyard.webhooks.ssrf import (
    AddressPolicy,
    DeliveryRefused,
    ResolutionFailed,
    Resolver,
    parse_ip,
    parse_target,
    resolve_checked,
)

Outcome = Literal["delivered", "retry", "failed", "gone"]

MAX_RESPONSE_BYTES = 4096
RETRY_AFTER_CAP_SECONDS = 3600.0  # a receiver cannot park a delivery for longer than an hour per attempt
RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class DeliveryRequest:
    """What to POST: the exact body (as signed) and the request headers (``delivery_headers``)."""

    url: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """One attempt. ``status`` is None when no response came; ``headers`` are the response's (names lower-case,
    repeated headers joined with ", "); ``body`` its first bytes (≤ ``max_response_bytes``); ``duration_ms`` the
    whole attempt including name resolution; ``error`` a sentence for the history (None when delivered);
    ``retry_after`` seconds the receiver asked to wait (capped), for ``retry`` outcomes. ``address`` is the IP
    connected to, ``request_headers`` the headers sent (with Host)."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    duration_ms: float
    error: str | None
    outcome: Outcome
    retry_after: float | None = None
    address: str | None = None
    request_headers: dict[str, str] = field(default_factory=dict)


def new_client(*, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The HTTP client for deliveries: no redirects, no proxies or netrc from the environment, and no keep-alive —
    the pool is keyed by IP and port, so a kept connection (TLS-verified for one host name) could otherwise carry
    a request for another name that resolves to the same address."""
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        verify=verify,
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"User-Agent": USER_AGENT},
    )


def classify(status: int) -> Outcome:
    """The outcome of an HTTP status (see the module's table)."""
    if 200 <= status < 300:
        return "delivered"
    if status == 410:
        return "gone"
    if status in RETRY_STATUSES or status >= 500:
        return "retry"
    return "failed"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent or unreadable; capped at
    ``RETRY_AFTER_CAP_SECONDS``, never negative."""
    if not value:
        return None
    text = value.strip()
    seconds: float
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_SECONDS)


async def deliver(
    client: httpx.AsyncClient,
    request: DeliveryRequest,
    policy: AddressPolicy,
    *,
    connect_timeout: float = 5.0,
    read_timeout: float = 10.0,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    total_timeout: float | None = None,
    resolver: Resolver | None = None,
) -> DeliveryResult:
    """POST ``request`` once and classify the result. Never raises for network or receiver problems: they become
    the result's ``outcome`` and ``error``.

    ``connect_timeout`` bounds name resolution and each TCP/TLS connect, ``read_timeout`` each wait for data;
    ``total_timeout`` (default ``connect_timeout + 2 × read_timeout``) bounds the whole attempt, so a receiver
    that trickles bytes cannot hold it. When a name has several addresses, the next is tried if a connect fails.
    """
    started = time.perf_counter()
    try:
        target = parse_target(request.url)
        addresses = await resolve_checked(
            target.host, target.port, policy, resolver=resolver, dns_timeout=connect_timeout
        )
    except DeliveryRefused as exc:
        return _no_response(started, f"refused: {exc}", "failed")
    except ResolutionFailed as exc:
        return _no_response(started, f"dns: {exc}", "retry")

    headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "accept-encoding")}
    headers["Host"] = target.host_header
    headers["Accept-Encoding"] = "identity"  # the capped body is stored as received: no decompression
    if not any(k.lower() == "user-agent" for k in headers):
        headers["User-Agent"] = USER_AGENT
    timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout)
    # Verify the certificate against the name, and send it as SNI (never an IP literal as SNI: RFC 6066).
    extensions = {} if parse_ip(target.host) is not None else {"sni_hostname": target.host}
    budget = total_timeout if total_timeout is not None else connect_timeout + 2 * read_timeout

    error = "no address to connect to"
    last_address: object = None
    try:
        async with asyncio.timeout(budget):
            for address in addresses:
                last_address = address
                outgoing = client.build_request(
                    "POST",
                    target.url_for(address),
                    content=request.body,
                    headers=headers,
                    timeout=timeout,
                    extensions=extensions,
                )
                try:
                    response = await client.send(outgoing, stream=True, follow_redirects=False)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    error = f"connect to {address}: {_describe(exc, connect_timeout, read_timeout)}"
                    continue  # nothing was sent: the next address may answer
                except httpx.HTTPError as exc:
                    error = _describe(exc, connect_timeout, read_timeout)
                    return _no_response(started, error, "retry", address, headers)
                try:
                    body, body_error = await _read_capped(response, max_response_bytes, connect_timeout, read_timeout)
                finally:
                    await response.aclose()
                return _from_response(started, response, body, body_error, address, headers)
    except TimeoutError:
        error = f"timeout: no complete response within {budget:g} s"
        return _no_response(started, error, "retry", last_address, headers)
    return _no_response(started, error, "retry", last_address, headers)


async def _read_capped(
    response: httpx.Response, limit: int, connect_timeout: float, read_timeout: float
) -> tuple[bytes, str | None]:
    """At most ``limit`` bytes of the raw body; stops reading the stream as soon as it has them."""
    collected = bytearray()
    try:
        async for chunk in response.aiter_raw():
            collected += chunk[: limit - len(collected)]
            if len(collected) >= limit:
                break
    except httpx.HTTPError as exc:
        return bytes(collected), f"response body incomplete: {_describe(exc, connect_timeout, read_timeout)}"
    return bytes(collected), None


def _from_response(
    started: float,
    response: httpx.Response,
    body: bytes,
    body_error: str | None,
    address: object,
    sent_headers: dict[str, str],
) -> DeliveryResult:
    status = response.status_code
    outcome = classify(status)
    headers = dict(response.headers.items())
    retry_after = parse_retry_after(response.headers.get("retry-after")) if outcome == "retry" else None
    error: str | None
    if outcome == "delivered":
        error = body_error
    elif 300 <= status < 400:
        location = response.headers.get("location", "")
        error = f"HTTP {status}: redirect{f' to {location}' if location else ''} not followed"
    elif outcome == "gone":
        error = "HTTP 410: the receiver says this webhook is gone"
    else:
        error = f"HTTP {status}{f' {response.reason_phrase}' if response.reason_phrase else ''}"
    return DeliveryResult(
        status=status,
        headers=headers,
        body=body,
        duration_ms=_elapsed_ms(started),
        error=error,
        outcome=outcome,
        retry_after=retry_after,
        address=str(address),
        request_headers=dict(sent_headers),
    )


def _no_response(
    started: float, error: str, outcome: Outcome, address: object = None, sent_headers: dict[str, str] | None = None
) -> DeliveryResult:
    return DeliveryResult(
        status=None,
        headers={},
        body=b"",
        duration_ms=_elapsed_ms(started),
        error=error,
        outcome=outcome,
        address=None if address is None else str(address),
        request_headers=dict(sent_headers or {}),
    )


def _describe(exc: httpx.HTTPError, connect_timeout: float, read_timeout: float) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timeout: no connection within {connect_timeout:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"timeout: no data for {read_timeout:g} s"
    if isinstance(exc, httpx.WriteTimeout):
        return f"timeout: could not send for {read_timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout: {type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
