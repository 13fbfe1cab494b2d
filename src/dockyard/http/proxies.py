"""Who is the client behind a reverse proxy: ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when
the TCP peer is one of ``trusted_proxies``, and then the client is the right-most address of ``X-Forwarded-For``
that is not a trusted proxy (every proxy appends the address it saw; what is left of that was written by the
client and proves nothing). Without trusted proxies the TCP peer is the client and the headers are ignored.

``resolve_client`` rewrites the ASGI scope's ``client`` (and ``scheme``) once per request, at the entry point,
before any route, log line or throttle reads it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client's address, given the TCP peer and the ``X-Forwarded-For`` entries (left to right)."""
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer


def _header_values(scope: Scope, name: bytes) -> list[str]:
    values: list[str] = []
    for key, value in scope["headers"]:
        if key == name:
            values.extend(value.decode("latin-1").split(","))
    return values


def resolve_client(scope: Scope, proxies: TrustedProxies) -> None:
    """Rewrite an HTTP scope's ``client`` (and ``scheme``) when its TCP peer is a trusted proxy."""
    peer = scope.get("client")
    if not proxies or peer is None or not proxies.trusts(peer[0]):
        return
    scope["client"] = (proxies.client(peer[0], _header_values(scope, b"x-forwarded-for")), 0)
    proto = [p.strip().lower() for p in _header_values(scope, b"x-forwarded-proto")]
    if proto and proto[-1] in ("http", "https"):
        scope["scheme"] = proto[-1]
