"""``dockyard ldap seal-password``: what it prints opens with the data directory's secret, and with no other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dockyard.auth.ldap import bind_password
from dockyard.cli.main import main
from dockyard.settings import load_settings
from dockyard.startup import resolve_secret_key


def test_the_sealed_bind_password_opens_with_the_servers_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["ldap", "seal-password", "--password-stdin", "--data-dir", str(data)]
    printed = CliRunner().invoke(main, args, input="bind-secret\n")
    assert printed.exit_code == 0, printed.output
    sealed = printed.output.strip()
    assert "bind-secret" not in sealed
    as_json = CliRunner().invoke(main, [*args, "--json"], input="bind-secret\n")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["ldap_bind_password_sealed"].startswith("gAAAA")
    ldap = {"ldap_url": "ldap://x", "ldap_user_search_base": "dc=x", "ldap_bind_dn": "cn=x"}
    settings = resolve_secret_key(load_settings(None, data_dir=data, ldap_bind_password_sealed=sealed, **ldap))
    assert bind_password(settings) == "bind-secret"
    with pytest.raises(ValueError, match="server secret differs"):
        bind_password(settings.model_copy(update={"secret_key": "another-secret-of-enough-length"}))


def test_the_password_comes_from_standard_input_only(tmp_path: Path) -> None:
    refused = CliRunner().invoke(main, ["ldap", "seal-password", "--data-dir", str(tmp_path)])
    assert refused.exit_code != 0
    assert "--password-stdin" in refused.output
