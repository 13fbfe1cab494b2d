"""The webhook settings: ``webhook_allowed_hosts`` from a file or the environment, checked at load time, and
accepted by ``AddressPolicy``; ``webhook_timeout_seconds``."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.settings import SettingsError, load_settings
from dockyard.webhooks.ssrf import AddressPolicy


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DOCKYARD_WEBHOOK_ALLOWED_HOSTS", "DOCKYARD_WEBHOOK_TIMEOUT_SECONDS"):
        monkeypatch.delenv(key, raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.webhook_allowed_hosts == []
    assert settings.webhook_timeout_seconds == 10.0


def test_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1, ::1,10.0.0.0/8 , CI.Internal,*.corp.example")
    monkeypatch.setenv("DOCKYARD_WEBHOOK_TIMEOUT_SECONDS", "2.5")
    settings = load_settings()
    assert settings.webhook_allowed_hosts == ["127.0.0.1", "::1", "10.0.0.0/8", "ci.internal", "*.corp.example"]
    assert settings.webhook_timeout_seconds == 2.5
    AddressPolicy(settings.webhook_allowed_hosts)  # every entry the settings accept, the policy accepts


def test_from_file(tmp_path: Path) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text('[webhook]\nallowed_hosts = ["192.168.0.0/16", "[fd00::1]", "hooks.lan"]\n')
    settings = load_settings(config)
    assert settings.webhook_allowed_hosts == ["192.168.0.0/16", "[fd00::1]", "hooks.lan"]
    AddressPolicy(settings.webhook_allowed_hosts)


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not a host", "http://x.example", "1.2.3", "fd00::/200"])
def test_bad_entries_are_named(entry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_WEBHOOK_ALLOWED_HOSTS", entry)
    with pytest.raises(SettingsError, match="webhook_allowed_hosts"):
        load_settings()


def test_bad_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_WEBHOOK_TIMEOUT_SECONDS", "0")
    with pytest.raises(SettingsError, match="webhook_timeout_seconds"):
        load_settings()
