"""Build rules in Docker Hub's model, as pure functions: which git refs a rule builds and into which tags.

A rule has a source type (``Branch`` or ``Tag``), a source name — a literal name, or a regular expression between
slashes (``/^v([0-9]+)\\.([0-9]+)$/``) searched in the ref's name — and a Docker tag template in which
``{sourceref}`` is the ref's name and ``{\\1}``…``{\\9}`` are the expression's capture groups (empty when a group
did not take part). ``also_latest`` tags ``latest`` too. A ref name may hold characters a tag may not (a branch
``feature/login``): each such character becomes ``-``, and the tag is cut to 128 characters.

A head commit whose message contains ``[skip build]`` or ``[ci skip]`` is not built (``skips_build``).
No I/O here: the trigger code asks ``tags_for`` and the API validates with ``validate_rule``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from dockyard.errors import Invalid

SourceType = Literal["Branch", "Tag"]
SOURCE_TYPES: Final = ("Branch", "Tag")
SKIP_MARKERS: Final = ("[skip build]", "[ci skip]")
MAX_TAG_LENGTH: Final = 128
MAX_PATTERN_LENGTH: Final = 255

_PLACEHOLDER = re.compile(r"\{(sourceref|\\[1-9])\}")
_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_.-]")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_BRANCH_PREFIX = "refs/heads/"
_TAG_PREFIX = "refs/tags/"


@dataclass(frozen=True, slots=True)
class Rule:
    """What matching needs of a stored rule."""

    source_type: SourceType
    source_name: str
    tag: str
    also_latest: bool = False


@dataclass(frozen=True, slots=True)
class GitRef:
    """A branch or a tag by its short name."""

    source_type: SourceType
    name: str

    @classmethod
    def parse(cls, full: str) -> GitRef | None:
        """``refs/heads/main`` → Branch main, ``refs/tags/v1`` → Tag v1 (a peeled ``^{}`` suffix is dropped);
        anything else None."""
        if full.startswith(_BRANCH_PREFIX):
            return cls("Branch", full[len(_BRANCH_PREFIX) :])
        if full.startswith(_TAG_PREFIX):
            return cls("Tag", full[len(_TAG_PREFIX) :].removesuffix("^{}"))
        return None

    @property
    def full(self) -> str:
        return (_BRANCH_PREFIX if self.source_type == "Branch" else _TAG_PREFIX) + self.name


def is_pattern(source_name: str) -> bool:
    """``/…/``: a regular expression; anything else is a literal name."""
    return len(source_name) >= 2 and source_name.startswith("/") and source_name.endswith("/")


def compile_pattern(source_name: str) -> re.Pattern[str]:
    """The expression between the slashes. Raises ``Invalid`` when it does not compile."""
    try:
        return re.compile(source_name[1:-1])
    except re.error as exc:
        raise Invalid("build_rule", f"source_name is not a valid regular expression: {exc}") from exc


def validate_rule(source_type: str, source_name: str, tag: str) -> None:
    """Raise ``Invalid`` unless the rule can ever produce a tag: a known source type, a non-empty name (a pattern
    that compiles), and a template whose ``{\\N}`` refer to groups the pattern has (none for a literal name) and
    whose fixed parts are allowed in a tag."""
    if source_type not in SOURCE_TYPES:
        raise Invalid("build_rule", "source_type must be Branch or Tag")
    if not source_name or len(source_name) > MAX_PATTERN_LENGTH or any(ord(c) < 32 for c in source_name):
        raise Invalid("build_rule", f"source_name must be 1 to {MAX_PATTERN_LENGTH} printable characters")
    if not tag or len(tag) > MAX_PATTERN_LENGTH:
        raise Invalid("build_rule", "tag must be 1 to 255 characters")
    groups = compile_pattern(source_name).groups if is_pattern(source_name) else 0
    for match in _PLACEHOLDER.finditer(tag):
        name = match.group(1)
        if name != "sourceref" and int(name[1:]) > groups:
            raise Invalid("build_rule", f"tag refers to {{{name}}} but source_name has {groups} capture group(s)")
    fixed = _PLACEHOLDER.sub("x", tag)
    if _NOT_IN_TAG.search(fixed):
        raise Invalid("build_rule", "tag may hold letters, digits, '_', '.', '-' and the {sourceref}, {\\1}… fields")


def _sanitize(raw: str) -> str | None:
    tag = _NOT_IN_TAG.sub("-", raw)[:MAX_TAG_LENGTH]
    return tag if _TAG.match(tag) else None


def match(rule: Rule, ref: GitRef) -> re.Match[str] | bool:
    """A match object (pattern) or True (literal) when ``rule`` builds ``ref``, else False."""
    if rule.source_type != ref.source_type:
        return False
    if is_pattern(rule.source_name):
        found = compile_pattern(rule.source_name).search(ref.name)
        return found if found is not None else False
    return rule.source_name == ref.name


def tags_for(rule: Rule, ref: GitRef) -> tuple[str, ...]:
    """The tags ``rule`` gives ``ref``, in order without duplicates; () when it does not build it (or the template
    yields no valid tag)."""
    found = match(rule, ref)
    if found is False:
        return ()
    groups = found.groups() if isinstance(found, re.Match) else ()

    def fill(placeholder: re.Match[str]) -> str:
        name = placeholder.group(1)
        if name == "sourceref":
            return ref.name
        index = int(name[1:]) - 1
        return (groups[index] or "") if index < len(groups) else ""

    out: list[str] = []
    tag = _sanitize(_PLACEHOLDER.sub(fill, rule.tag))
    if tag is not None:
        out.append(tag)
    if rule.also_latest and "latest" not in out:
        out.append("latest")
    return tuple(out)


def rules_for(rules: Iterable[tuple[int, Rule]], ref: GitRef) -> list[tuple[int, tuple[str, ...]]]:
    """(rule id, tags) of every rule that builds ``ref``."""
    return [(rule_id, tags) for rule_id, rule in rules if (tags := tags_for(rule, ref))]


def skips_build(message: str | None) -> bool:
    """Whether a head commit's message asks not to build (``[skip build]`` or ``[ci skip]``, any case)."""
    lowered = (message or "").lower()
    return any(marker in lowered for marker in SKIP_MARKERS)


def changed_refs(
    before: dict[str, str], after: dict[str, str], types: Sequence[SourceType] = SOURCE_TYPES
) -> list[tuple[GitRef, str]]:
    """The refs of ``after`` (full ref → sha, as ``git ls-remote`` lists them) that are new or moved since
    ``before``, as (ref, sha), branches and tags only."""
    changed = []
    for full, sha in sorted(after.items()):
        ref = GitRef.parse(full)
        if ref is None or full.endswith("^{}") or ref.source_type not in types:
            continue
        peeled = after.get(full + "^{}", sha)  # an annotated tag: build the commit it points to
        if before.get(full) != sha:
            changed.append((ref, peeled))
    return changed
