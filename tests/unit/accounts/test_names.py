"""The input grammar of account management."""

from __future__ import annotations

import pytest

from dockyard.accounts.names import (
    robot_name,
    split_robot_name,
    validate_email,
    validate_org_name,
    validate_password,
    validate_profile_url,
    validate_robot_shortname,
    validate_team_name,
    validate_text,
    validate_username,
)
from dockyard.errors import Invalid


@pytest.mark.parametrize("name", ["alice", "admin", "abcd", "a1b2c3", "x" * 30, "1234"])
def test_valid_usernames(name: str) -> None:
    assert validate_username(name) == name
    assert validate_org_name(name) == name


@pytest.mark.parametrize(
    "name", ["abc", "x" * 31, "Alice", "al_ice", "al-ice", "al.ice", "alice ", "", "ålice", "library", "al+ce"]
)
def test_invalid_or_reserved_usernames(name: str) -> None:
    with pytest.raises(Invalid) as err:
        validate_username(name)
    assert err.value.subject == "account"
    with pytest.raises(Invalid) as err:
        validate_org_name(name)
    assert err.value.subject == "organization"


@pytest.mark.parametrize("name", ["a", "Dev-Team", "ops_2", "x.y", "9" * 64])
def test_valid_team_names(name: str) -> None:
    assert validate_team_name(name) == name


@pytest.mark.parametrize("name", ["", "-dev", ".x", "_x", "a b", "x" * 65, "ab/c"])
def test_invalid_team_names(name: str) -> None:
    with pytest.raises(Invalid):
        validate_team_name(name)


def test_robot_names() -> None:
    assert validate_robot_shortname("ci_bot2") == "ci_bot2"
    assert robot_name("acme", "ci") == "acme+ci"
    assert split_robot_name("acme", "acme+ci") == "ci"
    assert split_robot_name("acme", "ci") == "ci"
    for bad in ["c", "2ci", "Ci", "ci-bot", "ci+x", ""]:
        with pytest.raises(Invalid):
            validate_robot_shortname(bad)
    with pytest.raises(Invalid):
        split_robot_name("acme", "other+ci")
    with pytest.raises(Invalid):
        robot_name("acme", "a" * 254)  # too long with the organization


def test_email() -> None:
    assert validate_email(" a.b@example.com ") == "a.b@example.com"
    for bad in ["", "a", "a@", "@example.com", "a@b", "a b@example.com", "a@exa\tmple.com", "x" * 310 + "@example.com"]:
        with pytest.raises(Invalid):
            validate_email(bad)


def test_password_policy() -> None:
    assert validate_password("12345678") == "12345678"
    for bad in ["", "1234567", "x" * 1025]:
        with pytest.raises(Invalid) as err:
            validate_password(bad)
        assert err.value.subject == "credentials"


def test_text_and_profile_url() -> None:
    assert validate_text(" Acme Inc. ", "company") == "Acme Inc."
    with pytest.raises(Invalid):
        validate_text("x" * 256, "company")
    with pytest.raises(Invalid):
        validate_text("a\nb", "company")
    assert validate_profile_url("https://example.com/me") == "https://example.com/me"
    assert validate_profile_url("") == ""
    for bad in ["javascript:alert(1)", "ftp://example.com", "example.com", "https:// x"]:
        with pytest.raises(Invalid):
            validate_profile_url(bad)
