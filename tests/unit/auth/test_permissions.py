"""How personal-access-token scopes cap an account's level (pure part of authz.permissions)."""

from __future__ import annotations

import pytest

from dockyard.authz.permissions import Level, actions_for, cap_by_token
from dockyard.authz.principal import Principal


def token(*scopes: str, repos: set[str] | None = None) -> Principal:
    return Principal(
        "user",
        1,
        "alice",
        token_id="t",
        token_scopes=frozenset(scopes),
        token_repositories=frozenset(repos) if repos is not None else None,
    )


@pytest.mark.parametrize(
    ("scopes", "level", "public", "expected"),
    [
        (("repo:admin",), Level.ADMIN, False, Level.ADMIN),
        (("repo:write",), Level.ADMIN, False, Level.WRITE),
        (("repo:read",), Level.ADMIN, False, Level.READ),
        (("repo:read",), Level.NONE, True, Level.READ),
        (("repo:public_read",), Level.ADMIN, False, Level.NONE),
        (("repo:public_read",), Level.ADMIN, True, Level.READ),
        (("repo:write",), Level.READ, False, Level.READ),
        ((), Level.ADMIN, False, Level.NONE),
    ],
)
def test_scopes_cap_the_level(scopes: tuple[str, ...], level: Level, public: bool, expected: Level) -> None:
    assert cap_by_token(token(*scopes), "alice/app", level, public) == expected


def test_repository_list_limits_the_token() -> None:
    limited = token("repo:admin", repos={"alice/one"})
    assert cap_by_token(limited, "alice/one", Level.ADMIN, False) == Level.ADMIN
    assert cap_by_token(limited, "alice/two", Level.ADMIN, False) == Level.NONE
    assert cap_by_token(limited, "alice/two", Level.ADMIN, True) == Level.READ


def test_without_a_token_the_level_stands_and_public_means_read() -> None:
    plain = Principal("user", 1, "alice")
    assert cap_by_token(plain, "x/y", Level.WRITE, False) == Level.WRITE
    assert cap_by_token(plain, "x/y", Level.NONE, True) == Level.READ


def test_actions_per_level() -> None:
    assert actions_for(Level.NONE) == frozenset()
    assert actions_for(Level.READ) == {"pull"}
    assert actions_for(Level.WRITE) == {"pull", "push"}
    assert actions_for(Level.ADMIN) == {"pull", "push", "delete"}
