from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from dockyard import __version__
from dockyard.cli.main import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_db_upgrade_creates_schema_only_when_asked(tmp_path: Path) -> None:
    refused = CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert refused.exit_code == 1
    assert f"no Dockyard database in {tmp_path.resolve()}" in refused.output
    assert "--init" in refused.output
    assert not (tmp_path / "dockyard.db").exists()
    result = CliRunner().invoke(main, ["db", "upgrade", "--init", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dockyard.db").exists()
    again = CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path), "--json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {"status": "up_to_date"}


def test_serve_rejects_bad_settings_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_WORKERS", "zero")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code != 0
    assert "workers" in result.output
    assert "Traceback" not in result.output


def test_serve_on_a_busy_port_fails_before_saying_it_serves(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--data-dir", str(tmp_path), "--workers", "1"])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.output
    assert "serving on" not in result.output
    assert "password" not in result.output  # nor made the administrator (whose password it would print once)


def test_db_status_says_whether_this_release_has_migrations_to_apply(tmp_path: Path) -> None:
    from dockyard.migrations.runner import head_revision

    assert CliRunner().invoke(main, ["db", "upgrade", "--init", "--data-dir", str(tmp_path)]).exit_code == 0
    current = CliRunner().invoke(main, ["db", "status", "--data-dir", str(tmp_path), "--json"])
    assert current.exit_code == 0, current.output
    assert json.loads(current.output) == {"revision": head_revision(), "head": head_revision(), "pending": False}

    with sqlite3.connect(tmp_path / "dockyard.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    behind = CliRunner().invoke(main, ["db", "status", "--data-dir", str(tmp_path), "--json"])
    assert json.loads(behind.output) == {"revision": "0001", "head": head_revision(), "pending": True}


def test_an_older_release_refuses_a_database_migrated_by_a_newer_one(tmp_path: Path) -> None:
    """What docs/upgrade.md promises for a rollback: an unknown (newer) revision stops the start, nothing is
    changed."""
    assert CliRunner().invoke(main, ["db", "upgrade", "--init", "--data-dir", str(tmp_path)]).exit_code == 0
    with sqlite3.connect(tmp_path / "dockyard.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    result = CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "9999_from_the_future" in str(result.exception) + result.output
    with sqlite3.connect(tmp_path / "dockyard.db") as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999_from_the_future",)]


def test_serve_with_a_certificate_that_does_not_load_fails_before_saying_it_serves(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    args = ["serve", "--port", "1", "--data-dir", str(tmp_path / "data"), "--workers", "1"]
    result = CliRunner().invoke(main, [*args, "--tls-cert", str(cert), "--tls-key", str(key)])
    assert result.exit_code == 1
    assert f"cannot use the TLS certificate {cert}" in result.output
    assert "serving on" not in result.output
    half = CliRunner().invoke(main, [*args, "--tls-cert", str(cert)])
    assert half.exit_code == 1
    assert "tls_cert and tls_key go together" in half.output


def test_serve_refuses_an_ldap_bind_password_the_secret_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "LDAP_URL": "ldaps://ldap.example",
        "LDAP_USER_SEARCH_BASE": "ou=people,dc=example,dc=org",
        "LDAP_BIND_DN": "cn=dockyard,dc=example,dc=org",
        "LDAP_BIND_PASSWORD_SEALED": "gAAAAA-sealed-under-another-secret",
    }.items():
        monkeypatch.setenv(f"DOCKYARD_{name}", value)
    result = CliRunner().invoke(main, ["serve", "--port", "1", "--data-dir", str(tmp_path / "data"), "--workers", "1"])
    assert result.exit_code == 1
    assert "ldap_bind_password: cannot decrypt: the server secret differs" in result.output
    assert "serving on" not in result.output
