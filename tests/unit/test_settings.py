from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.settings import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DOCKYARD_PORT", "DOCKYARD_DATA_DIR", "DOCKYARD_DATABASE_URL", "DOCKYARD_STORAGE_URL"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings()
    assert settings.port == 5000
    assert settings.host == "127.0.0.1"
    assert settings.effective_database_url.startswith("sqlite+aiosqlite:///")
    assert settings.effective_storage_url.startswith("file://")


def test_layering_file_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "dockyard.toml"
    config.write_text('port = 6000\nhost = "0.0.0.0"\n[storage]\nurl = "file:///srv/blobs"\n')
    monkeypatch.setenv("DOCKYARD_PORT", "7000")
    settings = load_settings(config)
    assert settings.host == "0.0.0.0"
    assert settings.port == 7000
    assert settings.storage_url == "file:///srv/blobs"
    assert load_settings(config, port=8000).port == 8000


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"DOCKYARD_PORT": "notaport"}, "port"),
        ({"DOCKYARD_PORT": "70000"}, "port"),
        ({"DOCKYARD_LOG_LEVEL": "loud"}, "log_level"),
        ({"DOCKYARD_DATABASE_URL": "mysql://x"}, "database_url"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], fragment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert fragment in str(info.value)


def test_bad_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = [")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config)
    config.write_text("no_such_setting = 1\n")
    with pytest.raises(SettingsError, match="no_such_setting"):
        load_settings(config)
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
