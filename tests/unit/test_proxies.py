"""``trusted_proxies``: which address is the client's behind reverse proxies, and the setting's grammar."""

from __future__ import annotations

import pytest

from dockyard.http.proxies import TrustedProxies, resolve_client
from dockyard.settings import Settings, SettingsError, load_settings

PROXIES = TrustedProxies(["10.0.0.0/24", "127.0.0.1/32", "fd00::/64"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # not a proxy: its header proves nothing
        ("10.0.0.5", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.5", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # the client wrote the left part
        ("10.0.0.5", ["6.6.6.6", "198.51.100.1", "10.0.0.9"], "198.51.100.1"),  # two proxies in a row
        ("10.0.0.5", ["10.0.0.7", "10.0.0.9"], "10.0.0.7"),  # proxies all the way: the left-most
        ("10.0.0.5", [], "10.0.0.5"),
        ("10.0.0.5", ["not-an-address"], "not-an-address"),
        ("::ffff:127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
        ("fd00::3", [" 198.51.100.2 "], "198.51.100.2"),
    ],
)
def test_the_client_is_the_right_most_untrusted_address(peer: str, forwarded: list[str], client: str) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_the_scope_is_rewritten_only_for_a_trusted_peer() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.1"), (b"x-forwarded-proto", b"https")]
    trusted = {"type": "http", "client": ("10.0.0.5", 4000), "scheme": "http", "headers": headers}
    resolve_client(trusted, PROXIES)
    assert (trusted["client"], trusted["scheme"]) == (("198.51.100.1", 0), "https")
    direct = {"type": "http", "client": ("203.0.113.7", 4000), "scheme": "http", "headers": headers}
    resolve_client(direct, PROXIES)
    assert (direct["client"], direct["scheme"]) == (("203.0.113.7", 4000), "http")
    nobody = {"type": "http", "client": ("10.0.0.5", 4000), "scheme": "http", "headers": headers}
    resolve_client(nobody, TrustedProxies([]))
    assert nobody["client"] == ("10.0.0.5", 4000)


def test_the_setting_takes_addresses_and_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_TRUSTED_PROXIES", "10.0.0.5, 192.168.0.0/16,fd00::/64")
    assert load_settings().trusted_proxies == ["10.0.0.5/32", "192.168.0.0/16", "fd00::/64"]
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("DOCKYARD_TRUSTED_PROXIES", "proxy.internal")
    with pytest.raises(SettingsError, match="trusted_proxies"):
        load_settings()
