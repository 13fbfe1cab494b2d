"""The SSRF guard: address tables (IPv4, IPv6, embedded forms), DNS answers, the administrator's allowlist."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from dockyard.webhooks.ssrf import (
    AddressPolicy,
    DeliveryRefused,
    ResolutionFailed,
    blocked_reason,
    check_url,
    parse_ip,
    parse_target,
    resolve_checked,
)

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "this-network"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("10.0.0.1", "private (RFC 1918)"),
    ("172.16.0.1", "private (RFC 1918)"),
    ("172.31.255.255", "private (RFC 1918)"),
    ("192.168.1.1", "private (RFC 1918)"),
    ("100.64.0.1", "shared address space (CGNAT, RFC 6598)"),
    ("100.127.255.254", "shared address space (CGNAT, RFC 6598)"),
    ("100.100.100.200", "cloud metadata"),
    ("192.0.0.170", "IETF protocol assignment"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::127.0.0.1", "reserved"),  # deprecated IPv4-compatible form
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "unique local (ULA)"),
    ("fd12:3456::1", "unique local (ULA)"),
    ("fd00:ec2::254", "cloud metadata"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("2001::1", "IETF protocol assignment"),  # Teredo
    ("100::1", "discard-only"),
    ("64:ff9b:1::1", "NAT64 local-use"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:7f00:1", "IPv4-mapped loopback"),
    ("::ffff:169.254.169.254", "IPv4-mapped cloud metadata"),
    ("::ffff:10.1.2.3", "IPv4-mapped private (RFC 1918)"),
    ("::ffff:0.0.0.0", "IPv4-mapped unspecified"),
    ("64:ff9b::a9fe:a9fe", "NAT64 cloud metadata"),
    ("64:ff9b::192.168.0.1", "NAT64 private (RFC 1918)"),
    ("2002:7f00:1::", "6to4 loopback"),
    ("2002:a00:1::1", "6to4 private (RFC 1918)"),
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.32.0.1",  # just above 172.16/12
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_refused_by_default(address: str, reason: str) -> None:
    ip = parse_ip(address)
    assert ip is not None
    assert blocked_reason(ip) == reason
    with pytest.raises(DeliveryRefused) as info:
        AddressPolicy().check(ip, address)
    assert info.value.reason == reason
    assert reason in str(info.value)
    assert "webhook_allowed_hosts" in str(info.value)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    ip = parse_ip(address)
    assert ip is not None
    assert blocked_reason(ip) is None
    AddressPolicy().check(ip, address)


@pytest.mark.parametrize(
    ("allow", "address", "allowed"),
    [
        (["127.0.0.1"], "127.0.0.1", True),
        (["127.0.0.1"], "127.0.0.2", False),
        (["127.0.0.0/8"], "127.0.0.2", True),
        (["127.0.0.1"], "::ffff:127.0.0.1", True),  # the mapped form is the same host
        (["127.0.0.1"], "::1", False),
        (["::1"], "::1", True),
        (["[::1]"], "::1", True),
        (["10.0.0.0/8"], "10.200.0.1", True),
        (["10.0.0.0/8"], "192.168.0.1", False),
        (["fd00::/8"], "fd12::1", True),
        (["169.254.169.254"], "169.254.169.254", True),  # metadata only by address
        ([], "127.0.0.1", False),
    ],
)
def test_allowlist_by_address(allow: list[str], address: str, allowed: bool) -> None:
    ip = parse_ip(address)
    assert ip is not None
    policy = AddressPolicy(allow)
    assert policy.allows_address(ip) is allowed
    if allowed:
        policy.check(ip, address)
    else:
        with pytest.raises(DeliveryRefused):
            policy.check(ip, address)


def test_allowlist_by_host_name() -> None:
    policy = AddressPolicy(["ci.internal", "*.corp.example", " Build.Example.COM. "])
    private = parse_ip("10.1.2.3")
    assert private is not None
    policy.check(private, "ci.internal")
    policy.check(private, "CI.INTERNAL.")
    policy.check(private, "jenkins.corp.example")
    policy.check(private, "a.b.corp.example")
    policy.check(private, "build.example.com")
    for host in ("corp.example", "ci.internal.evil.example", "xcorp.example", "other.internal"):
        with pytest.raises(DeliveryRefused):
            policy.check(private, host)
    metadata = parse_ip("169.254.169.254")
    assert metadata is not None
    with pytest.raises(DeliveryRefused, match="cloud metadata"):
        policy.check(metadata, "ci.internal")  # a name allowance never covers the metadata service


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "http://x", "a..b", "-x.example"])
def test_bad_policy_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="webhook_allowed_hosts"):
        AddressPolicy([entry])


def fake_dns(answers: dict[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise ResolutionFailed(f"cannot resolve {host}")
        return list(answers[host])

    return resolve


DNS = fake_dns(
    {
        "public.example": ["93.184.215.14", "2606:2800:220:1::"],
        "evil.example": ["10.0.0.5"],
        "mixed.example": ["93.184.215.14", "127.0.0.1"],
        "mapped.example": ["::ffff:169.254.169.254"],
        "v6private.example": ["fd00::1"],
        "dup.example": ["93.184.215.14", "93.184.215.14"],
        "empty.example": [],
        "garbage.example": ["not-an-ip"],
    }
)


async def test_dns_names_resolving_to_private_addresses_are_refused() -> None:
    policy = AddressPolicy()
    assert [str(a) for a in await resolve_checked("public.example", 443, policy, resolver=DNS)] == [
        "93.184.215.14",
        "2606:2800:220:1::",
    ]
    assert len(await resolve_checked("dup.example", 443, policy, resolver=DNS)) == 1
    with pytest.raises(DeliveryRefused, match=r"evil\.example resolves to 10\.0\.0\.5, a private"):
        await resolve_checked("evil.example", 443, policy, resolver=DNS)
    with pytest.raises(DeliveryRefused, match="loopback"):
        await resolve_checked("mixed.example", 443, policy, resolver=DNS)  # one bad address refuses the name
    with pytest.raises(DeliveryRefused, match="IPv4-mapped cloud metadata"):
        await resolve_checked("mapped.example", 443, policy, resolver=DNS)
    with pytest.raises(DeliveryRefused, match="unique local"):
        await resolve_checked("v6private.example", 443, policy, resolver=DNS)
    for host in ("nxdomain.example", "empty.example", "garbage.example"):
        with pytest.raises(ResolutionFailed):
            await resolve_checked(host, 443, policy, resolver=DNS)


async def test_allowlisted_name_resolving_to_private_address() -> None:
    addresses = await resolve_checked("evil.example", 80, AddressPolicy(["evil.example"]), resolver=DNS)
    assert [str(a) for a in addresses] == ["10.0.0.5"]
    addresses = await resolve_checked("evil.example", 80, AddressPolicy(["10.0.0.0/24"]), resolver=DNS)
    assert [str(a) for a in addresses] == ["10.0.0.5"]


async def test_literal_addresses_skip_dns() -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("a literal address must not be resolved")

    with pytest.raises(DeliveryRefused, match=r"^127\.0\.0\.1 is a loopback address"):
        await resolve_checked("127.0.0.1", 80, AddressPolicy(), resolver=no_dns)
    assert [str(a) for a in await resolve_checked("::1", 80, AddressPolicy(["::1"]), resolver=no_dns)] == ["::1"]


async def test_slow_dns_times_out() -> None:
    async def slow(host: str, port: int) -> list[str]:
        await asyncio.sleep(5)
        return ["93.184.215.14"]

    with pytest.raises(ResolutionFailed, match="no answer within"):
        await resolve_checked("slow.example", 80, AddressPolicy(), resolver=slow, dns_timeout=0.05)


async def test_system_resolver_refuses_localhost() -> None:
    with pytest.raises(DeliveryRefused, match="loopback"):
        await check_url("http://localhost:9/hook", AddressPolicy())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://[::1]:8080/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[::ffff:127.0.0.1]/", "IPv4-mapped loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "IPv4-mapped cloud metadata"),
        ("https://10.0.0.1:8443/x", "private (RFC 1918)"),
    ],
)
async def test_literal_urls_are_checked(url: str, reason: str) -> None:
    with pytest.raises(DeliveryRefused) as info:
        await check_url(url, AddressPolicy())
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "example.com/hook", "http:///nohost"],
)
def test_only_http_and_https(url: str) -> None:
    with pytest.raises(DeliveryRefused):
        parse_target(url)


def test_parse_target() -> None:
    target = parse_target("https://Hook.Example.com/p/a?x=1")
    assert (target.scheme, target.host, target.port, target.host_header) == (
        "https",
        "hook.example.com",
        443,
        "hook.example.com",
    )
    ip = parse_ip("93.184.215.14")
    assert ip is not None
    assert str(target.url_for(ip)) == "https://93.184.215.14/p/a?x=1"
    v6 = parse_target("http://[2606:4700::1]:8080/h")
    assert (v6.host, v6.port, v6.host_header) == ("2606:4700::1", 8080, "[2606:4700::1]:8080")
    idn = parse_target("http://bücher.example:81/")
    assert idn.host == "xn--bcher-kva.example"
    assert idn.host_header == "xn--bcher-kva.example:81"
