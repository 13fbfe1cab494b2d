"""Scope grammar (distribution scope.md): names with host:port, resource classes, several actions, bad input."""

from __future__ import annotations

import pytest

from dockyard.auth.scopes import parse_scope, parse_scopes
from dockyard.errors import Invalid


def test_repository_scope_with_several_actions() -> None:
    scope = parse_scope("repository:samalba/my-app:pull,push")
    assert (scope.type, scope.name, scope.actions) == ("repository", "samalba/my-app", ("pull", "push"))
    assert scope.render() == "repository:samalba/my-app:pull,push"


def test_resource_class_is_ignored_and_catalog_parses() -> None:
    assert parse_scope("repository(plugin):a/b:pull").type == "repository"
    catalog = parse_scope("registry:catalog:*")
    assert (catalog.type, catalog.name, catalog.actions) == ("registry", "catalog", ("*",))


def test_actions_split_at_the_last_colon() -> None:
    # A registry-side name never has a port, but another resource type may carry host:port.
    scope = parse_scope("other:host:5000/x:pull")
    assert scope.name == "host:5000/x"


def test_space_separated_scopes_in_one_parameter_and_repeated_parameters() -> None:
    scopes = parse_scopes(["repository:a/b:pull repository:c/d:push", "registry:catalog:*"])
    assert [s.name for s in scopes] == ["a/b", "c/d", "catalog"]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "repository",
        "repository:a/b",
        ":a/b:pull",
        "repository::pull",
        "repository:A/B:pull",
        "repository:a/b:pu ll",
        "repository:a/b:PULL",
        "repo$:a:pull",
    ],
)
def test_malformed_scopes_are_invalid(raw: str) -> None:
    with pytest.raises(Invalid):
        parse_scope(raw)


def test_too_many_scopes() -> None:
    with pytest.raises(Invalid):
        parse_scopes([" ".join(f"repository:a/b{i}:pull" for i in range(40))])
