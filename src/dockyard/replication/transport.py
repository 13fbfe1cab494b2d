"""The connections of replication's upstream client: ``PinnedTransport`` resolves the host of every request once
(each redirect hop and token request included), checks every address with the SSRF guard
(``dockyard.webhooks.ssrf``) and connects to a checked address itself — never resolving the name again — so a DNS
answer that changes between the check and the connect (DNS rebinding) cannot send a replication inward. The request
keeps its ``Host`` header and, over TLS, the name as SNI and for certificate verification.

Connections are pooled per (scheme, host name, port): a kept connection, TLS-verified for one name, never carries a
request for another name that resolves to the same address.
"""

from __future__ import annotations

import httpx

from dockyard.webhooks.ssrf import (
    DEFAULT_PORTS,
    AddressPolicy,
    DeliveryRefused,
    ResolutionFailed,
    Resolver,
    parse_ip,
    resolve_checked,
)

MAX_POOLS = 64  # host names with a pool of their own; the oldest pool is closed beyond that


class AddressRefused(httpx.ConnectError):
    """The SSRF guard refused the request's host (or an address it resolves to): nothing was sent."""


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to addresses ``policy`` allows, resolved once per request by
    ``resolver`` (the system's by default). Raises ``AddressRefused`` for a refused host, ``httpx.ConnectError``
    when the name does not resolve or no address accepts a connection."""

    def __init__(self, policy: AddressPolicy, *, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver
        self._pools: dict[tuple[str, str, int], httpx.AsyncHTTPTransport] = {}

    async def _pool(self, scheme: str, host: str, port: int) -> httpx.AsyncHTTPTransport:
        key = (scheme, host, port)
        pool = self._pools.get(key)
        if pool is None:
            if len(self._pools) >= MAX_POOLS:
                oldest = next(iter(self._pools))
                await self._pools.pop(oldest).aclose()
            pool = self._pools[key] = httpx.AsyncHTTPTransport(trust_env=False)
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")
        port = url.port or DEFAULT_PORTS.get(url.scheme, 443)
        timeouts = request.extensions.get("timeout") or {}
        try:
            addresses = await resolve_checked(
                host, port, self.policy, resolver=self.resolver, dns_timeout=timeouts.get("connect")
            )
        except DeliveryRefused as exc:
            raise AddressRefused(f"refused to send a request to {host}: {exc}", request=request) from exc
        except ResolutionFailed as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        extensions = dict(request.extensions)
        if parse_ip(host) is None and url.scheme == "https":
            extensions["sni_hostname"] = host  # the certificate is verified against the name, not the address
        pool = await self._pool(url.scheme, host, port)
        error: httpx.TransportError = httpx.ConnectError(f"no address of {host} to connect to", request=request)
        for address in addresses:
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=str(address), port=port),
                headers=request.headers,  # Host: the name, as the client set it
                stream=request.stream,
                extensions=extensions,
            )
            try:
                return await pool.handle_async_request(pinned)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = exc  # nothing was sent: the next address may answer
        raise error

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()
