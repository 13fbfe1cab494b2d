"""Tag immutability: which rule, if any, protects a tag of a repository, and the writes that respect it.

A repository is guarded by its own rules — Docker Hub's ``immutable_tags_settings {enabled, rules}``, RE2 regular
expressions kept on the ``repositories`` row — when ``enabled``, and by its namespace's rules
(``immutability_rules``: a glob or RE2 pattern on the tag, a glob on the repository's name within the namespace).
A regular expression must match the whole tag (``v.*`` protects ``v1.0`` and not ``dev``), as a glob does.

A protected tag is never moved to another manifest nor deleted: the manifest PUT claims it with
``claim_tag_sync`` inside its write unit (``INSERT … ON CONFLICT DO NOTHING``, then the existing row is locked
and compared: pushing the digest it already names again is no error), and the deletes ask ``guard_sync`` first.
Garbage collection only ever collects untagged manifests, so it cannot take a protected tag's manifest.

Cost on the push path: ``GUARD`` replaces the repository look-up the push makes anyway and brings the
repository's rules and whether its namespace has any, so a repository without namespace rules costs no extra
statement; one with namespace rules costs one ``SELECT`` of them.

``protected_sync(conn, repository, tag)`` / ``protected(conn, repository, tag)`` answer "is this tag immutable"
for any caller (retention, the Hub API); ``guard_sync`` returns a ``RepositoryGuard`` to ask about many tags.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import bindparam, delete, exists, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.statements import insert_or_nothing
from dockyard.errors import Denied, Invalid
from dockyard.models import ImmutabilityRule, Repository, Tag
from dockyard.models.base import utcnow

Syntax = Literal["glob", "regex"]
SYNTAXES: tuple[Syntax, ...] = ("glob", "regex")
MAX_RULES = 100
MAX_PATTERN = 255

# The push's repository look-up: id, the repository's own rules, and whether its namespace has rules.
GUARD = select(
    Repository.id,
    Repository.namespace,
    Repository.immutable_tags,
    Repository.immutable_tags_rules,
    exists().where(ImmutabilityRule.namespace == Repository.namespace).label("namespace_rules"),
).where(Repository.name == bindparam("name"))
_NAMESPACE_RULES = (
    select(ImmutabilityRule.pattern, ImmutabilityRule.syntax, ImmutabilityRule.repositories)
    .where(ImmutabilityRule.namespace == bindparam("namespace"))
    .order_by(ImmutabilityRule.id)
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One immutability rule; ``scope`` names where it is set (``repository acme/app``, ``namespace acme``)."""

    pattern: str
    syntax: Syntax
    scope: str

    def describe(self) -> str:
        return f'{self.syntax} rule "{self.pattern}" of {self.scope}'

    def matches(self, tag: str) -> bool:
        return bool(_matcher(self.pattern, self.syntax)(tag))


@lru_cache(maxsize=4096)
def _matcher(pattern: str, syntax: Syntax) -> Any:
    if syntax == "glob":
        return lambda tag: fnmatch.fnmatchcase(tag, pattern)
    import re2  # type: ignore[import-untyped]  # (google-re2: on the first regular-expression rule)

    compiled = re2.compile(pattern)
    return lambda tag: compiled.fullmatch(tag) is not None


def check_pattern(pattern: str, syntax: str, field: str = "rules") -> str:
    """``pattern`` if it is a usable rule of ``syntax``; else ``Invalid("request")`` naming ``field``. Regular
    expressions are RE2's (Go's ``regexp``, as Docker Hub's); commas are refused as Docker Hub refuses them."""
    if syntax not in SYNTAXES:
        raise Invalid("request", f"syntax must be one of {', '.join(SYNTAXES)}", {"field": field})
    if not pattern or len(pattern) > MAX_PATTERN or "," in pattern or not pattern.isprintable():
        raise Invalid(
            "request",
            f"a rule is 1 to {MAX_PATTERN} printable characters without commas",
            {"field": field, "rule": pattern[:MAX_PATTERN]},
        )
    if syntax == "regex":
        import re2

        try:
            re2.compile(pattern)
        except re2.error as exc:
            raise Invalid(
                "request", f"rule {pattern!r} is not a valid regular expression: {exc}", {"field": field}
            ) from None
    return pattern


def check_rules(rules: list[str], field: str = "rules") -> list[str]:
    """Docker Hub's rule list, each rule checked (at most ``MAX_RULES``, duplicates dropped, order kept)."""
    if len(rules) > MAX_RULES:
        raise Invalid("request", f"at most {MAX_RULES} rules", {"field": field})
    return list(dict.fromkeys(check_pattern(rule, "regex", field) for rule in rules))


@dataclass(frozen=True, slots=True)
class RepositoryGuard:
    """The rules that apply to one repository."""

    id: int
    name: str
    rules: tuple[Rule, ...]

    def match(self, tag: str) -> Rule | None:
        """The first rule protecting ``tag``, or None."""
        for rule in self.rules:
            if rule.matches(tag):
                return rule
        return None


def repository_rules(stored: str) -> list[str]:
    """The rules of a repository row (``immutable_tags_rules``, a JSON list)."""
    try:
        rules = json.loads(stored or "[]")
    except ValueError:
        return []
    return [rule for rule in rules if isinstance(rule, str)] if isinstance(rules, list) else []


def guard_from_row(conn: Connection, name: str, row: Any) -> RepositoryGuard:
    """The guard of the repository whose ``GUARD`` row is ``row`` (one more statement only when its namespace has
    rules)."""
    rules: list[Rule] = []
    if row.immutable_tags:
        scope = f"repository {name}"
        rules += [Rule(rule, "regex", scope) for rule in repository_rules(row.immutable_tags_rules)]
    if row.namespace_rules:
        within = name.split("/", 1)[1] if "/" in name else name
        for pattern, syntax, repositories in conn.execute(_NAMESPACE_RULES, {"namespace": row.namespace}):
            if fnmatch.fnmatchcase(within, repositories or "*"):
                rules.append(Rule(pattern, "glob" if syntax == "glob" else "regex", f"namespace {row.namespace}"))
    return RepositoryGuard(row.id, name, tuple(rules))


def guard_sync(conn: Connection, repository: str) -> RepositoryGuard | None:
    """The rules that apply to ``repository`` (a registry name), or None if there is no such repository."""
    row = conn.execute(GUARD, {"name": repository}).first()
    return None if row is None else guard_from_row(conn, repository, row)


async def guard(conn: AsyncConnection, repository: str) -> RepositoryGuard | None:
    """``guard_sync`` in an async unit of work."""
    return await conn.run_sync(lambda sync: guard_sync(sync, repository))


def protected_sync(conn: Connection, repository: str, tag: str) -> Rule | None:
    """The rule that makes ``tag`` of ``repository`` immutable, or None (also for an unknown repository)."""
    found = guard_sync(conn, repository)
    return None if found is None else found.match(tag)


async def protected(conn: AsyncConnection, repository: str, tag: str) -> Rule | None:
    """``protected_sync`` in an async unit of work."""
    return await conn.run_sync(lambda sync: protected_sync(sync, repository, tag))


def refusal(repository: str, tag: str, rule: Rule, doing: str) -> Denied:
    """The error for ``doing`` (``moved``, ``deleted``) a protected tag; the message names the rule."""
    return Denied(
        "tag",
        f'tag "{tag}" of {repository} is immutable and cannot be {doing} ({rule.describe()})',
        {"repository": repository, "tag": tag, "rule": rule.pattern, "syntax": rule.syntax, "scope": rule.scope},
    )


_CURRENT = (
    select(Tag.manifest_id)
    .where(Tag.repository_id == bindparam("repo_id"), Tag.name == bindparam("tag"))
    .with_for_update()
)


def claim_tag_sync(
    conn: Connection, repo: RepositoryGuard, tag: str, manifest_id: int, pushed_by: str | None, rule: Rule
) -> bool:
    """Point the protected ``tag`` at the manifest if it names none yet; True if this call created it. If it
    names this manifest already nothing changes; if it names another, ``Denied("tag")``. Race-free: the insert
    does nothing when another writer holds the row (on PostgreSQL it waits for that writer's commit), and the row
    is then locked and compared."""
    for _ in range(3):
        created = conn.execute(
            insert_or_nothing(conn, Tag)
            .values(repository_id=repo.id, name=tag, manifest_id=manifest_id, updated_at=utcnow(), pushed_by=pushed_by)
            .returning(Tag.name)
        ).first()
        if created is not None:
            return True
        current = conn.execute(_CURRENT, {"repo_id": repo.id, "tag": tag}).scalar_one_or_none()
        if current is None:
            continue  # deleted between the two statements (only by a repository delete): try again
        if int(current) != manifest_id:
            raise refusal(repo.name, tag, rule, "moved to another manifest")
        return False
    raise refusal(repo.name, tag, rule, "moved to another manifest")


# -- settings -------------------------------------------------------------------------------------------------


async def set_repository_rules(conn: AsyncConnection, repo_id: int, enabled: bool, rules: list[str]) -> bool:
    """Store Docker Hub's ``immutable_tags_settings`` of a repository; True if they changed."""
    stored = json.dumps(check_rules(rules))
    row = (
        await conn.execute(
            select(Repository.immutable_tags, Repository.immutable_tags_rules).where(Repository.id == repo_id)
        )
    ).first()
    if row is not None and bool(row.immutable_tags) == enabled and row.immutable_tags_rules == stored:
        return False
    await conn.execute(
        update(Repository)
        .where(Repository.id == repo_id)
        .values(immutable_tags=enabled, immutable_tags_rules=stored, updated_at=utcnow())
    )
    return True


@dataclass(frozen=True, slots=True)
class NamespaceRule:
    pattern: str
    syntax: Syntax
    repositories: str = "*"


async def namespace_rules(conn: AsyncConnection, namespace: str) -> list[NamespaceRule]:
    rows = await conn.execute(_NAMESPACE_RULES, {"namespace": namespace})
    return [NamespaceRule(row.pattern, row.syntax, row.repositories) for row in rows]


async def replace_namespace_rules(conn: AsyncConnection, namespace: str, rules: list[NamespaceRule]) -> None:
    """Replace the namespace's rules (each checked; at most ``MAX_RULES``)."""
    if len(rules) > MAX_RULES:
        raise Invalid("request", f"at most {MAX_RULES} rules", {"field": "rules"})
    for rule in rules:
        check_pattern(rule.pattern, rule.syntax)
        check_pattern(rule.repositories, "glob", "repositories")
    await conn.execute(delete(ImmutabilityRule).where(ImmutabilityRule.namespace == namespace))
    if rules:
        now = utcnow()
        await conn.execute(
            insert(ImmutabilityRule),
            [
                {
                    "namespace": namespace,
                    "pattern": r.pattern,
                    "syntax": r.syntax,
                    "repositories": r.repositories,
                    "created_at": now,
                }
                for r in rules
            ],
        )
