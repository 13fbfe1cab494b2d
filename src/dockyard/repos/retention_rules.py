"""Retention rules, pure: which tags of a repository a policy keeps, given each tag's push and pull times.

Harbor's tag-retention model: every rule names a tag pattern (a glob: ``*`` matches any run of characters, ``?``
one, ``[…]`` a set; ``**`` is the same as ``*``) and a template; a tag is kept if *any* rule keeps it, and a run
deletes the others. A policy with no rules keeps every tag. Templates:

- ``latestPushedK``: the ``value`` most recently pushed matching tags;
- ``latestPulledN``: the ``value`` most recently pulled matching tags (never pulled tags are not among them);
- ``nDaysSinceLastPush``: matching tags pushed within the last ``value`` days;
- ``nDaysSinceLastPull``: matching tags pulled within the last ``value`` days;
- ``always``: every matching tag.

Ties are broken by tag name (byte order), so a plan is the same every time it is computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from dockyard.errors import Invalid

TEMPLATES = ("latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull", "always")
MAX_RULES = 15
MAX_VALUE = 100_000


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: str
    template: str
    value: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "template": self.template, "value": self.value}


@dataclass(frozen=True, slots=True)
class TagFacts:
    name: str
    digest: str
    pushed_at: datetime
    pulled_at: datetime | None


def parse_rules(raw: Iterable[Any]) -> tuple[Rule, ...]:
    """Rules from their JSON form (``{"pattern", "template", "value"}``). Raises ``Invalid("retention")``."""
    rules = []
    for item in raw:
        if not isinstance(item, dict):
            raise Invalid("retention", "a rule is an object with pattern, template and value")
        pattern, template, value = item.get("pattern", "*"), item.get("template"), item.get("value", 0)
        if not isinstance(pattern, str) or not 1 <= len(pattern) <= 255 or not pattern.isprintable():
            raise Invalid("retention", "pattern must be 1 to 255 printable characters", {"pattern": str(pattern)[:300]})
        if template not in TEMPLATES:
            raise Invalid("retention", f"template must be one of {list(TEMPLATES)}", {"template": str(template)[:100]})
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VALUE:
            raise Invalid("retention", f"value must be an integer from 0 to {MAX_VALUE}", {"value": str(value)[:50]})
        rules.append(Rule(pattern, template, value))
    if len(rules) > MAX_RULES:
        raise Invalid("retention", f"at most {MAX_RULES} rules")
    return tuple(rules)


def _matches(pattern: str, tag: str) -> bool:
    return fnmatchcase(tag, pattern.replace("**", "*"))


def kept_by(rule: Rule, tags: Sequence[TagFacts], now: datetime) -> set[str]:
    """The names of the tags ``rule`` keeps."""
    matching = [t for t in tags if _matches(rule.pattern, t.name)]
    if rule.template == "always":
        return {t.name for t in matching}
    if rule.template == "latestPushedK":
        ordered = sorted(matching, key=lambda t: (-t.pushed_at.timestamp(), t.name))
        return {t.name for t in ordered[: rule.value]}
    if rule.template == "latestPulledN":
        pulled = [t for t in matching if t.pulled_at is not None]
        ordered = sorted(pulled, key=lambda t: (-t.pulled_at.timestamp() if t.pulled_at else 0.0, t.name))
        return {t.name for t in ordered[: rule.value]}
    since = now - timedelta(days=rule.value)
    if rule.template == "nDaysSinceLastPush":
        return {t.name for t in matching if t.pushed_at >= since}
    if rule.template == "nDaysSinceLastPull":
        return {t.name for t in matching if t.pulled_at is not None and t.pulled_at >= since}
    raise ValueError(f"unknown template {rule.template!r}")


def doomed(tags: Sequence[TagFacts], rules: Sequence[Rule], now: datetime) -> list[TagFacts]:
    """The tags no rule keeps (none when there are no rules), by name."""
    if not rules:
        return []
    kept: set[str] = set()
    for rule in rules:
        kept |= kept_by(rule, tags, now)
    return sorted((t for t in tags if t.name not in kept), key=lambda t: t.name)
