"""Retention rules, pure: each template, patterns, any-rule-keeps, no rules keep everything, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dockyard.errors import Invalid
from dockyard.repos.retention_rules import Rule, TagFacts, doomed, kept_by, parse_rules

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def tag(name: str, pushed_days: float, pulled_days: float | None = None) -> TagFacts:
    pulled = None if pulled_days is None else NOW - timedelta(days=pulled_days)
    return TagFacts(name, f"sha256:{name}", NOW - timedelta(days=pushed_days), pulled)


TAGS = [
    tag("v1", 10, 1),
    tag("v2", 5),
    tag("v3", 1, 30),
    tag("latest", 0.5, 0.1),
    tag("dev-1", 40, 2),
]


def names(found: set[str] | list[TagFacts]) -> list[str]:
    return sorted(found if isinstance(found, set) else {t.name for t in found})


def test_templates() -> None:
    assert names(kept_by(Rule("v*", "latestPushedK", 2), TAGS, NOW)) == ["v2", "v3"]
    assert names(kept_by(Rule("*", "latestPulledN", 2), TAGS, NOW)) == ["latest", "v1"]  # never pulled: not ranked
    assert names(kept_by(Rule("**", "nDaysSinceLastPush", 6), TAGS, NOW)) == ["latest", "v2", "v3"]
    assert names(kept_by(Rule("*", "nDaysSinceLastPull", 3), TAGS, NOW)) == ["dev-1", "latest", "v1"]
    assert names(kept_by(Rule("dev-?", "always"), TAGS, NOW)) == ["dev-1"]


def test_a_tag_is_kept_if_any_rule_keeps_it() -> None:
    rules = [Rule("v*", "latestPushedK", 1), Rule("latest", "always")]
    assert names(doomed(TAGS, rules, NOW)) == ["dev-1", "v1", "v2"]


def test_no_rules_keep_every_tag() -> None:
    assert doomed(TAGS, [], NOW) == []


def test_ties_break_by_name() -> None:
    same = [tag("b", 1), tag("a", 1), tag("c", 1)]
    assert names(kept_by(Rule("*", "latestPushedK", 2), same, NOW)) == ["a", "b"]


@pytest.mark.parametrize(
    "raw",
    [
        [{"pattern": "*", "template": "keepAll"}],
        [{"pattern": "", "template": "always"}],
        [{"pattern": "*", "template": "latestPushedK", "value": -1}],
        [{"pattern": "*", "template": "latestPushedK", "value": True}],
        ["v*"],
        [{"pattern": "*", "template": "always"}] * 16,
    ],
)
def test_invalid_rules_are_refused(raw: list[object]) -> None:
    with pytest.raises(Invalid):
        parse_rules(raw)


def test_parse_defaults() -> None:
    assert parse_rules([{"template": "always"}]) == (Rule("*", "always", 0),)
