"""The LDAP settings: validation, the group → team mapping's grammar, and where the search account's password
comes from (sealed with the server secret, a file, or the setting itself)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.auth.ldap import bind_password, seal_bind_password
from dockyard.settings import SettingsError, load_settings
from dockyard.settings_ldap import GroupTeam, parse_group_team

BASE = {"ldap_url": "ldaps://ldap.example:636", "ldap_user_search_base": "ou=people,dc=example,dc=org"}
SECRET = "a-server-secret-of-some-length"


def test_the_mapping_splits_at_the_last_equals_sign() -> None:
    assert parse_group_team("cn=devs,ou=groups,dc=Example,dc=org=acme/Developers") == GroupTeam(
        group="cn=devs,ou=groups,dc=example,dc=org", org="acme", team="Developers"
    )
    assert parse_group_team(" ops = acme/operators ") == GroupTeam(group="ops", org="acme", team="operators")
    for bad in ("devs", "devs=acme", "devs=acme/", "=acme/team", "devs=/team", "devs=acme/a/b"):
        with pytest.raises(ValueError, match="GROUP=ORG/TEAM"):
            parse_group_team(bad)


def test_ldap_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load_settings().ldap_enabled
    settings = load_settings(None, **BASE)
    assert settings.ldap_enabled
    assert settings.effective_ldap_user_filter == "(uid={username})"
    for bad, match in (
        ({"ldap_url": "http://ldap.example"}, "ldap:// or ldaps://"),
        ({"ldap_user_search_base": ""}, "ldap_user_search_base"),
        ({"ldap_start_tls": True}, "ldap_start_tls is for ldap://"),
        ({"ldap_user_filter": "(uid=alice)"}, "{username}"),
        ({"ldap_group_filter": "(member=x)"}, "{user_dn}"),
        ({"ldap_group_teams": ["devs"]}, "GROUP=ORG/TEAM"),
    ):
        with pytest.raises(SettingsError, match=match):
            load_settings(None, **{**BASE, **bad})
    # From the environment, entries are separated by ";" (DNs have commas).
    monkeypatch.setenv("DOCKYARD_LDAP_GROUP_TEAMS", "cn=a,dc=x=org1/t1; b=org2/t2")
    assert [entry.team for entry in load_settings(None, **BASE).ldap_team_mapping] == ["t1", "t2"]


def test_the_bind_password_comes_sealed_from_a_file_or_plain(tmp_path: Path) -> None:
    settings = load_settings(None, **BASE, secret_key=SECRET, ldap_bind_dn="cn=search", ldap_bind_password="plain")
    assert bind_password(settings) == "plain"
    secret_file = tmp_path / "bind-password"
    secret_file.write_text("from-a-file\n")
    settings = settings.model_copy(update={"ldap_bind_password_file": secret_file})
    assert bind_password(settings) == "from-a-file"
    sealed = seal_bind_password(settings, "sealed-one")
    assert "sealed-one" not in sealed
    assert bind_password(settings.model_copy(update={"ldap_bind_password_sealed": sealed})) == "sealed-one"
    other_secret = settings.model_copy(update={"ldap_bind_password_sealed": sealed, "secret_key": SECRET + "x"})
    with pytest.raises(ValueError, match="server secret differs"):
        bind_password(other_secret)
    with pytest.raises(ValueError, match="cannot read"):
        bind_password(settings.model_copy(update={"ldap_bind_password_file": tmp_path / "missing"}))
