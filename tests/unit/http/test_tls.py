"""``dockyard.http.tls``: the server context's settings, and the reload that follows the files — a changed pair
is taken, a pair that does not load is not (the previous one stays), and the files are looked at once per interval."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from dockyard.http.tls import ReloadingContext, server_context
from dockyard.settings import SettingsError, load_settings
from tests.support.tls import TestCA


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path / "ca")


def test_the_server_context_allows_tls_12_and_newer_and_offers_http11(ca: TestCA) -> None:
    pair = ca.issue("server")
    context = server_context(pair.cert, pair.key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    ciphers = {cipher["name"] for cipher in context.get_ciphers()}
    assert not any("CBC" in name or name.startswith(("AES128-", "AES256-", "DES")) for name in ciphers), ciphers
    assert all(cipher["protocol"] == "TLSv1.3" or "ECDHE" in cipher["name"] for cipher in context.get_ciphers())


def test_a_mismatched_pair_does_not_start(ca: TestCA) -> None:
    one, other = ca.issue("one"), ca.issue("other")
    with pytest.raises(ssl.SSLError):
        ReloadingContext(one.cert, other.key)


def test_reload_takes_a_changed_pair_and_keeps_the_old_one_while_it_does_not_load(ca: TestCA, tmp_path: Path) -> None:
    first, second = ca.issue("first"), ca.issue("second")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(first.cert.read_bytes())
    key.write_bytes(first.key.read_bytes())
    reloading = ReloadingContext(cert, key, check_seconds=10)
    original = reloading.current
    assert reloading.listener is original

    assert not reloading.refresh(now=reloading._checked + 20)  # nothing changed
    key.write_bytes(second.key.read_bytes())  # half-way through a renewal: the pair does not match
    assert not reloading.refresh(now=reloading._checked + 20)
    assert reloading.current is original
    cert.write_bytes(second.cert.read_bytes())
    assert not reloading.refresh(now=reloading._checked + 1)  # not looked at again within the interval
    assert reloading.refresh(now=reloading._checked + 20)
    assert reloading.current is not original
    assert reloading.listener is original  # the listener keeps its callback; handshakes switch to `current`


def test_settings_take_both_tls_files_or_neither(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="tls_cert and tls_key"):
        load_settings(tls_cert=tmp_path / "x.crt")
    settings = load_settings(tls_cert=Path("x.crt"), tls_key=Path("x.key"))
    assert settings.tls
    assert settings.tls_cert == Path("x.crt").resolve()
    assert not load_settings().tls
