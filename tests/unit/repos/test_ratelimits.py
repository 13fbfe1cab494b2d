"""The pull rate limiter's decisions without a database: counting per subject in fixed windows, HEAD never
counting nor refused, Docker Hub's headers, Retry-After, the IPv6 /64 subject, unlimited accounts and the
settings. Sharing between replicas is tested with three servers (tests/clients/test_replicas.py)."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.authz.principal import ANONYMOUS, OPEN, Principal
from dockyard.repos.ratelimits import PullRateLimiter, address_subject
from dockyard.settings import Settings


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **settings: Any) -> PullRateLimiter:
    values = {"rate_limit_anonymous": 3, "rate_limit_authenticated": 5, "rate_limit_window_seconds": 100, **settings}
    return PullRateLimiter(None, Settings(**values), clock=clock)  # type: ignore[arg-type]


def test_anonymous_pulls_count_per_address_and_window() -> None:
    clock = Clock(1_000_010.0)  # 10 s into a window of 100
    limits = limiter(clock)
    first = limits.take(ANONYMOUS, "192.0.2.1", count=True)
    assert first.headers() == {
        "ratelimit-limit": "3;w=100",
        "ratelimit-remaining": "2;w=100",
        "docker-ratelimit-source": "192.0.2.1",
    }
    assert limits.take(ANONYMOUS, "192.0.2.1", count=False).remaining == 2  # HEAD: shown, not counted
    assert limits.take(ANONYMOUS, "192.0.2.1", count=True).remaining == 1
    assert limits.take(ANONYMOUS, "192.0.2.1", count=True).remaining == 0
    refused = limits.take(ANONYMOUS, "192.0.2.1", count=True)
    assert not refused.allowed
    assert refused.retry_after == 90
    assert limits.take(ANONYMOUS, "192.0.2.1", count=False).allowed  # HEAD is never refused
    assert limits.take(ANONYMOUS, "192.0.2.2", count=True).remaining == 2  # another address
    assert limits.take(OPEN, "192.0.2.1", count=True).allowed is False  # an open server counts by address too
    clock.now += 90  # the next window
    assert limits.take(ANONYMOUS, "192.0.2.1", count=True).remaining == 2


def test_accounts_count_by_account_and_zero_is_unlimited() -> None:
    clock = Clock(5_000.0)
    limits = limiter(clock)
    alice = Principal("user", 7, "alice")
    for remaining in (4, 3, 2, 1, 0):
        decision = limits.take(alice, f"198.51.100.{remaining}", count=True)
        assert decision.remaining == remaining
        assert decision.source == "alice"
    assert not limits.take(alice, "198.51.100.9", count=True).allowed
    assert limits.take(ANONYMOUS, "198.51.100.9", count=True).allowed
    unlimited = limiter(clock, rate_limit_authenticated=0)
    decision = unlimited.take(alice, "198.51.100.1", count=True)
    assert decision.allowed
    assert decision.headers() == {}


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert address_subject("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_subject("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_subject("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_subject("192.0.2.7") == "192.0.2.7"


def test_settings_parse_organization_overrides() -> None:
    settings = Settings(rate_limit_organizations="acme=5000, big=0", rate_limit_unlimited_robots="acme+ci")
    assert settings.rate_limit_overrides == {"acme": 5000, "big": 0}
    assert settings.rate_limit_unlimited_robots == ["acme+ci"]
    assert not PullRateLimiter.enabled(Settings())
    with pytest.raises(ValueError, match="organization=limit"):
        Settings(rate_limit_organizations="acme")
