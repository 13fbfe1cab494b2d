from __future__ import annotations

import pytest

from dockyard.core.names import validate_name, validate_tag
from dockyard.errors import Invalid


@pytest.mark.parametrize("name", ["a", "library/ubuntu", "a/b/c/d", "my-org/my_repo", "a.b/c__d", "x--y/0"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "A", "a/", "/a", "a//b", "../a", "a/../b", "a/./b", "-a", "a-", "a___b", "a b", "a" * 256, "a/%2e%2e"],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(Invalid):
        validate_name(name)


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "A" * 128, "a-b_c.d"])
def test_valid_tags(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a" * 129, "a/b", "a:b", "a b"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(Invalid):
        validate_tag(tag)
