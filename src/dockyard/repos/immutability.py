"""Tag immutability as the Hub manages it: a repository's ``immutable_tags_settings`` (Docker Hub's shape, also on
the repository's PATCH), the check of a candidate rule against the repository's tags (``…/immutabletags/verify``)
and a namespace's own rules (glob or regex, Dockyard's).

The rules are enforced below, in ``dockyard.registry.immutability`` (the manifest PUT and the deletes); this
module re-exports its question "is this tag immutable" for the hub's other services (retention):
``protected(conn, repository, tag) -> Rule | None`` (async), ``protected_sync`` (in a sync unit) and ``guard`` /
``guard_sync`` (a ``RepositoryGuard`` whose ``match(tag)`` answers for many tags with one read).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.authorizer import NamespaceResource, Permission, require
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.events.audit import record_audit
from dockyard.models import Repository, Tag
from dockyard.registry.context import RegistryContext
from dockyard.registry.immutability import (
    NamespaceRule,
    RepositoryGuard,
    Rule,
    check_pattern,
    guard,
    guard_sync,
    namespace_rules,
    protected,
    protected_sync,
    replace_namespace_rules,
    repository_rules,
    set_repository_rules,
)
from dockyard.repos.access import resolve
from dockyard.repos.snapshots import ImmutableTagsSettings

__all__ = [
    "ImmutabilityService",
    "NamespaceRule",
    "RepositoryGuard",
    "Rule",
    "guard",
    "guard_sync",
    "protected",
    "protected_sync",
    "repository_settings",
    "store_repository_settings",
]

MAX_VERIFY_TAGS = 10_000


async def repository_settings(conn: AsyncConnection, repo_id: int) -> ImmutableTagsSettings:
    """Docker Hub's ``immutable_tags_settings`` of a repository."""
    row = (
        await conn.execute(
            select(Repository.immutable_tags, Repository.immutable_tags_rules).where(Repository.id == repo_id)
        )
    ).first()
    if row is None:
        return ImmutableTagsSettings()
    return ImmutableTagsSettings(bool(row.immutable_tags), tuple(repository_rules(row.immutable_tags_rules)))


async def store_repository_settings(
    conn: AsyncConnection,
    repo_id: int,
    settings: ImmutableTagsSettings,
    *,
    name: str,
    namespace: str,
    actor: str | None,
    source_ip: str = "",
) -> bool:
    """Store a repository's settings in the caller's transaction (it has authorized: admin on the repository);
    audits ``repo.update`` ``{"fields": ["immutable_tags_settings"], …}`` when they changed."""
    changed = await set_repository_rules(conn, repo_id, settings.enabled, list(settings.rules))
    if changed:
        await record_audit(
            conn,
            namespace,
            "repo.update",
            actor=actor,
            target=name,
            source_ip=source_ip,
            data={"fields": ["immutable_tags_settings"], "enabled": settings.enabled, "rules": list(settings.rules)},
        )
    return changed


@dataclass(frozen=True, slots=True)
class NamespaceRules:
    namespace: str
    rules: tuple[NamespaceRule, ...]


class ImmutabilityService:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def update(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        settings: ImmutableTagsSettings,
        *,
        source_ip: str = "",
    ) -> ImmutableTagsSettings:
        """Set a repository's rules (admin level). Raises ``NotFound("repository")``, ``Denied("repository")``,
        ``Invalid("request")`` for a rule RE2 cannot compile (or with a comma)."""

        async def work(conn: AsyncConnection) -> ImmutableTagsSettings:
            record, _ = await resolve(conn, actor, namespace, name, Level.ADMIN)
            await store_repository_settings(
                conn,
                record.id,
                settings,
                name=record.name,
                namespace=record.namespace,
                actor=actor.audit_name or None,
                source_ip=source_ip,
            )
            return await repository_settings(conn, record.id)

        return await self.ctx.db.run_write(work)

    async def verify(self, actor: Principal, namespace: str, name: str, regex: str) -> list[str]:
        """The repository's tags that the rule ``regex`` would protect, by name (admin level, as Docker Hub)."""
        check_pattern(regex, "regex", "regex")
        rule = Rule(regex, "regex", "verify")
        async with self.ctx.db.read() as conn:
            record, _ = await resolve(conn, actor, namespace, name, Level.ADMIN)
            tags = (
                await conn.execute(
                    select(Tag.name).where(Tag.repository_id == record.id).order_by(Tag.name).limit(MAX_VERIFY_TAGS)
                )
            ).scalars()
            return [tag for tag in tags if rule.matches(tag)]

    async def namespace_rules(self, actor: Principal, namespace: str) -> NamespaceRules:
        async with self.ctx.db.read(consistent=True) as conn:
            await self._owner(conn, actor, namespace)
            return NamespaceRules(namespace, tuple(await namespace_rules(conn, namespace)))

    async def set_namespace_rules(
        self, actor: Principal, namespace: str, rules: list[NamespaceRule], *, source_ip: str = ""
    ) -> NamespaceRules:
        """Replace the namespace's rules (its owners). Raises ``Invalid("request")`` for a bad pattern."""
        async with self.ctx.db.write() as conn:
            await self._owner(conn, actor, namespace)
            await replace_namespace_rules(conn, namespace, rules)
            await record_audit(
                conn,
                namespace,
                "immutability.rules.change",
                actor=actor.audit_name,
                target=namespace,
                source_ip=source_ip,
                data={"rules": [asdict(rule) for rule in rules]},
            )
            return NamespaceRules(namespace, tuple(await namespace_rules(conn, namespace)))

    @staticmethod
    async def _owner(conn: AsyncConnection, actor: Principal, namespace: str) -> None:
        await require(
            conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(namespace), doing="manage its immutability rules"
        )
