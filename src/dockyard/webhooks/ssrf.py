"""The SSRF guard: which addresses a webhook may be delivered to.

A webhook URL is chosen by a user, and Dockyard runs next to things users must not reach (the cloud metadata
service, the database, an admin port on loopback). So before every delivery the host is resolved and *every*
address it resolves to is checked; the sender then connects to one of those checked addresses itself (never
resolving again), so DNS rebinding between the check and the connect is impossible. Literal IPs in URLs are
checked the same way, in every spelling the resolver accepts (``2130706433``, ``[::ffff:127.0.0.1]``).

Refused unless the policy allows them: loopback, unspecified, link-local (with the metadata address
169.254.169.254), private (RFC 1918), shared/CGNAT 100.64.0.0/10, unique-local fc00::/7, site-local, multicast,
documentation, benchmarking and reserved ranges, anything else not globally reachable, and IPv6 forms that embed
one of those IPv4 addresses (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``).

``AddressPolicy`` holds the administrator's exceptions (setting ``webhook_allowed_hosts``): IP addresses and CIDR
ranges allow those addresses; host names (``ci.internal``, or ``*.corp.example`` for every subdomain) allow
whatever that name resolves to — except cloud metadata addresses, which only an explicit address or range allows.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) → addresses as strings``; the default asks the system (``getaddrinfo``)."""

SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
SETTING = "webhook_allowed_hosts"

_net = ipaddress.ip_network

# Checked in order; the first match names the reason. IPv6 forms embedding an IPv4 address are unwrapped first.
_BLOCKED: tuple[tuple[IPNetwork, str], ...] = (
    (_net("0.0.0.0/32"), "unspecified"),
    (_net("0.0.0.0/8"), "this-network"),
    (_net("127.0.0.0/8"), "loopback"),
    (_net("169.254.169.254/32"), "cloud metadata"),
    (_net("169.254.170.0/24"), "cloud metadata"),  # ECS task metadata, EC2 DNS/time
    (_net("169.254.0.0/16"), "link-local"),
    (_net("10.0.0.0/8"), "private (RFC 1918)"),
    (_net("172.16.0.0/12"), "private (RFC 1918)"),
    (_net("192.168.0.0/16"), "private (RFC 1918)"),
    (_net("100.100.100.200/32"), "cloud metadata"),  # Alibaba Cloud, inside the CGNAT range
    (_net("100.64.0.0/10"), "shared address space (CGNAT, RFC 6598)"),
    (_net("192.0.0.0/24"), "IETF protocol assignment"),
    (_net("192.0.2.0/24"), "documentation"),
    (_net("198.51.100.0/24"), "documentation"),
    (_net("203.0.113.0/24"), "documentation"),
    (_net("198.18.0.0/15"), "benchmarking"),
    (_net("192.88.99.0/24"), "reserved"),
    (_net("224.0.0.0/4"), "multicast"),
    (_net("255.255.255.255/32"), "broadcast"),
    (_net("240.0.0.0/4"), "reserved"),
    (_net("::/128"), "unspecified"),
    (_net("::1/128"), "loopback"),
    (_net("64:ff9b:1::/48"), "NAT64 local-use"),
    (_net("::/8"), "reserved"),  # includes the deprecated IPv4-compatible ::a.b.c.d
    (_net("100::/64"), "discard-only"),
    (_net("2001::/23"), "IETF protocol assignment"),  # Teredo, ORCHID, benchmarking…
    (_net("2001:db8::/32"), "documentation"),
    (_net("3fff::/20"), "documentation"),
    (_net("fd00:ec2::254/128"), "cloud metadata"),
    (_net("fd00:ec2::23/128"), "cloud metadata"),
    (_net("fc00::/7"), "unique local (ULA)"),
    (_net("fe80::/10"), "link-local"),
    (_net("fec0::/10"), "site-local"),
    (_net("ff00::/8"), "multicast"),
)
_METADATA = "cloud metadata"
_NAT64 = _net("64:ff9b::/96")
_HOST_RE = re.compile(
    r"^(\*\.)?(?=.{1,253}$)([a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


class DeliveryRefused(Exception):
    """The guard refused the URL: its scheme, or an address its host is or resolves to. ``reason`` is short
    (``loopback``); ``str()`` is the whole sentence, safe to show the webhook's owner."""

    def __init__(self, reason: str, *, host: str = "", address: str | None = None, message: str = "") -> None:
        self.reason = reason
        self.host = host
        self.address = address
        if not message:
            hint = f" (an administrator can allow it in {SETTING})"
            if address is None or address == host:
                message = f"{address or host} is a {reason} address{hint}"
            else:
                message = f"{host} resolves to {address}, a {reason} address{hint}"
        super().__init__(message)


class ResolutionFailed(Exception):
    """The host name could not be resolved (now): a network error, worth retrying later."""


def parse_ip(text: str) -> IPAddress | None:
    """``text`` as an IP address (brackets and an IPv6 zone are dropped), or None if it is not one."""
    candidate = text.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for, with the form's name, if it is one of those forms."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    return None


def blocked_reason(address: IPAddress) -> str | None:
    """Why deliveries to ``address`` are refused by default, or None if it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(int(address))  # drop any zone id
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            form, inner = embedded
            inner_reason = blocked_reason(inner)
            return f"{form} {inner_reason}" if inner_reason else None
    for network, reason in _BLOCKED:
        if address in network:
            return reason
    if not address.is_global:
        return "non-global"
    return None


def _variants(address: IPAddress) -> list[IPAddress]:
    """``address`` and, for IPv6 forms embedding one, the IPv4 address it stands for."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ipaddress.IPv6Address(int(address)))
        if embedded is not None:
            return [address, embedded[1]]
    return [address]


class AddressPolicy:
    """The administrator's exceptions to the guard: host names and IP addresses or CIDR ranges.

    Raises ValueError for an entry that is neither (naming it). An empty policy allows public addresses only.
    """

    def __init__(self, allow: Iterable[str] = ()) -> None:
        hosts: set[str] = set()
        suffixes: set[str] = set()
        networks: list[IPNetwork] = []
        entries: list[str] = []
        for raw in allow:
            entry = raw.strip().lower()
            if not entry:
                continue
            entries.append(entry)
            literal = parse_ip(entry)
            if literal is not None:
                networks.append(ipaddress.ip_network(literal))
                continue
            if "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError as exc:
                    raise ValueError(f"{SETTING}: {raw!r} is not a valid CIDR range") from exc
                continue
            host = entry.rstrip(".")
            if not _HOST_RE.match(host):
                raise ValueError(f"{SETTING}: {raw!r} is neither a host name nor an IP address or CIDR range")
            if host.startswith("*."):
                suffixes.add(host[1:])
            else:
                hosts.add(host)
        self.allow: tuple[str, ...] = tuple(entries)
        self._hosts = frozenset(hosts)
        self._suffixes = tuple(sorted(suffixes))
        self._networks = tuple(networks)

    def __repr__(self) -> str:
        return f"AddressPolicy({list(self.allow)!r})"

    def allows_host(self, host: str) -> bool:
        """Whether ``host`` (a name, not an address) is listed, exactly or under a ``*.`` entry."""
        name = host.lower().rstrip(".")
        return name in self._hosts or any(name.endswith(suffix) for suffix in self._suffixes)

    def allows_address(self, address: IPAddress) -> bool:
        """Whether ``address`` (or the IPv4 address an IPv6 form embeds) is in a listed address or range."""
        return any(candidate in network for candidate in _variants(address) for network in self._networks)

    def check(self, address: IPAddress, host: str = "") -> None:
        """Raise ``DeliveryRefused`` unless ``address`` — which ``host`` resolved to — may be delivered to."""
        reason = blocked_reason(address)
        if reason is None or self.allows_address(address):
            return
        if host and parse_ip(host) is None and self.allows_host(host) and not reason.endswith(_METADATA):
            return
        raise DeliveryRefused(reason, host=host or str(address), address=str(address))


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, through the system resolver (without blocking the event loop)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolutionFailed(f"cannot resolve {host}: {exc}") from exc
    return [str(info[4][0]) for info in infos]


async def resolve_checked(
    host: str,
    port: int,
    policy: AddressPolicy,
    *,
    resolver: Resolver | None = None,
    dns_timeout: float | None = None,
) -> list[IPAddress]:
    """The addresses of ``host`` in resolver order, each checked against ``policy``; a literal IP is its own
    address. Raises ``DeliveryRefused`` if any address is refused (a name that resolves to one public and one
    private address is refused), ``ResolutionFailed`` if the name does not resolve within ``dns_timeout`` seconds."""
    literal = parse_ip(host)
    if literal is not None:
        policy.check(literal, host)
        return [literal]
    try:
        async with asyncio.timeout(dns_timeout):
            raw = await (resolver or system_resolver)(host, port)
    except TimeoutError as exc:
        raise ResolutionFailed(f"cannot resolve {host}: no answer within {dns_timeout:g} s") from exc
    addresses: list[IPAddress] = []
    for text in raw:
        address = parse_ip(text)
        if address is None:
            raise ResolutionFailed(f"cannot resolve {host}: the resolver returned {text!r}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ResolutionFailed(f"cannot resolve {host}: no addresses")
    for address in addresses:
        policy.check(address, host)
    return addresses


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL taken apart: ``host`` as resolved (IDNA ASCII, no brackets), ``port`` always set,
    ``host_header`` as the client would send it (``name[:port]``)."""

    url: httpx.URL
    scheme: str
    host: str
    port: int
    host_header: str

    def url_for(self, address: IPAddress) -> httpx.URL:
        """The same URL with the host replaced by ``address`` (the request goes there; Host and SNI keep the
        name)."""
        return self.url.copy_with(host=str(address), port=self.port)


def parse_target(url: str) -> Target:
    """Parse a webhook URL with the HTTP client's own parser. Raises ``DeliveryRefused`` for a scheme other than
    http/https or a URL without a host."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise DeliveryRefused("invalid URL", message=f"invalid URL: {exc}") from exc
    if parsed.scheme not in SCHEMES:
        raise DeliveryRefused(
            "scheme", message=f"scheme {parsed.scheme or '(none)'!r} is not allowed: only http and https"
        )
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise DeliveryRefused("invalid URL", message="the URL has no host")
    return Target(
        url=parsed,
        scheme=parsed.scheme,
        host=host,
        port=parsed.port or DEFAULT_PORTS[parsed.scheme],
        host_header=parsed.netloc.decode("ascii"),
    )


async def check_url(
    url: str, policy: AddressPolicy, *, resolver: Resolver | None = None, dns_timeout: float | None = None
) -> list[IPAddress]:
    """Parse ``url`` and resolve and check its host: what the API can run when a webhook is created or changed
    (deliveries check again every time). Raises ``DeliveryRefused`` or ``ResolutionFailed``."""
    target = parse_target(url)
    return await resolve_checked(target.host, target.port, policy, resolver=resolver, dns_timeout=dns_timeout)
