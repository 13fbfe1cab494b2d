"""Build rules in Docker Hub's model (``dockyard.builds.rules``): which refs a rule builds into which tags."""

from __future__ import annotations

import pytest

from dockyard.builds.rules import GitRef, Rule, changed_refs, rules_for, skips_build, tags_for, validate_rule
from dockyard.errors import Invalid

pytestmark = pytest.mark.embedded_only

MAIN = GitRef("Branch", "main")


@pytest.mark.parametrize(
    ("rule", "ref", "tags"),
    [
        (Rule("Branch", "main", "latest"), MAIN, ("latest",)),
        (Rule("Branch", "main", "{sourceref}"), MAIN, ("main",)),
        (Rule("Branch", "main", "latest"), GitRef("Branch", "develop"), ()),
        (Rule("Branch", "main", "latest"), GitRef("Tag", "main"), ()),  # the source type must match too
        (Rule("Tag", "/^v([0-9]+)\\.([0-9]+)\\.([0-9]+)$/", "{\\1}.{\\2}"), GitRef("Tag", "v1.2.3"), ("1.2",)),
        (Rule("Tag", "/^v([0-9.]+)$/", "release-{\\1}"), GitRef("Tag", "v2.0"), ("release-2.0",)),
        (Rule("Tag", "/^v([0-9.]+)$/", "release-{\\1}"), GitRef("Tag", "x2.0"), ()),
        (Rule("Tag", "/^v([0-9.]+)$/", "{sourceref}"), GitRef("Tag", "v2.0"), ("v2.0",)),
        (Rule("Branch", "/^feature/(.*)$/", "feat-{\\1}"), GitRef("Branch", "feature/login"), ("feat-login",)),
        # a ref name's characters that a tag may not hold become "-"
        (Rule("Branch", "/.*/", "{sourceref}"), GitRef("Branch", "feature/login"), ("feature-login",)),
        (Rule("Branch", "/(x)?main/", "a{\\1}b"), MAIN, ("ab",)),  # a group that did not take part is empty
        (Rule("Branch", "main", "stable", also_latest=True), MAIN, ("stable", "latest")),
        (Rule("Branch", "main", "latest", also_latest=True), MAIN, ("latest",)),  # no duplicates
        (Rule("Branch", "/^(.*)$/", "{\\1}"), GitRef("Branch", "-bad"), ()),  # not a valid tag: nothing
        (Rule("Branch", "/ai/", "{sourceref}"), MAIN, ("main",)),  # a pattern is searched, not anchored
    ],
)
def test_tags_for(rule: Rule, ref: GitRef, tags: tuple[str, ...]) -> None:
    assert tags_for(rule, ref) == tags


def test_tags_are_cut_to_128_characters() -> None:
    (tag,) = tags_for(Rule("Branch", "/.*/", "{sourceref}"), GitRef("Branch", "b" * 300))
    assert tag == "b" * 128


def test_rules_for_lists_every_matching_rule() -> None:
    rules = [
        (1, Rule("Branch", "main", "latest")),
        (2, Rule("Branch", "/^ma/", "{sourceref}-dev")),
        (3, Rule("Tag", "/.*/", "{sourceref}")),
    ]
    assert rules_for(rules, MAIN) == [(1, ("latest",)), (2, ("main-dev",))]


@pytest.mark.parametrize(
    ("source_type", "source_name", "tag"),
    [
        ("branch", "main", "latest"),  # Docker Hub's capitalised names only
        ("Branch", "", "latest"),
        ("Branch", "main", ""),
        ("Branch", "main", "{\\1}"),  # a literal name has no groups
        ("Tag", "/^v(.*)$/", "{\\2}"),  # one group only
        ("Tag", "/^v(.*$/", "x"),  # does not compile
        ("Branch", "main", "a b"),  # a space is never in a tag
        ("Branch", "main", "x:y"),
    ],
)
def test_invalid_rules_are_refused(source_type: str, source_name: str, tag: str) -> None:
    with pytest.raises(Invalid):
        validate_rule(source_type, source_name, tag)


def test_valid_rules_pass() -> None:
    validate_rule("Tag", "/^v([0-9]+)\\.([0-9]+)$/", "{\\1}.{\\2}-{sourceref}")
    validate_rule("Branch", "main", "latest")


@pytest.mark.parametrize(
    ("message", "skip"),
    [
        ("fix things", False),
        ("docs [skip build]", True),
        ("docs [ci skip]\n\nmore", True),
        ("[SKIP BUILD] shouting", True),
        ("skip build", False),
        (None, False),
    ],
)
def test_skip_markers(message: str | None, skip: bool) -> None:
    assert skips_build(message) is skip


def test_git_refs_parse() -> None:
    assert GitRef.parse("refs/heads/feature/x") == GitRef("Branch", "feature/x")
    assert GitRef.parse("refs/tags/v1^{}") == GitRef("Tag", "v1")
    assert GitRef.parse("refs/pull/1/head") is None
    assert GitRef("Tag", "v1").full == "refs/tags/v1"


def test_changed_refs_are_the_new_and_moved_ones_peeled() -> None:
    before = {"refs/heads/main": "a" * 40, "refs/heads/old": "b" * 40}
    after = {
        "refs/heads/main": "a" * 40,  # unchanged
        "refs/heads/old": "c" * 40,  # moved
        "refs/tags/v1": "d" * 40,  # new annotated tag: the commit it points to is built
        "refs/tags/v1^{}": "e" * 40,
        "refs/pull/1/head": "f" * 40,  # not a branch or tag
    }
    assert changed_refs(before, after) == [(GitRef("Branch", "old"), "c" * 40), (GitRef("Tag", "v1"), "e" * 40)]
