"""Retention policies (per repository, or per namespace for its repositories without one of their own), their
runs — on demand, as a dry run, or on the ``retention`` schedule — and the history of runs.

A run plans first, from one consistent read: the tags no rule keeps (``retention_rules``), minus protected ones —
tags an immutability rule covers (``immutability.guard``), with ``keep_signed`` tags of signed images — and, with
``untagged_days``, the repository's untagged manifests older than that which no index of it lists and whose
subject is gone (garbage collection's rule, for one repository), with what only they keep (``repos.orphans``: an
untagged index's platforms, a deleted image's referrers). Tag-scheme attachments (``sha256-<hex>.sig``,
``.att``, ``.sbom``, the referrers fallback tag) are never candidates: they belong to the image they attach to. A
real run deletes through the registry's manifest service (``ManifestService.delete``), one tag at a time, each
only if the tag still points at the planned manifest: the events (``tag.deleted`` → webhooks ``tag_deleted``,
``manifest.deleted``) and audit entries are the ones any other delete writes. ``bytes_freed`` is the size of the
blobs only the removed images used in the repository, which the next garbage collection reclaims.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from dockyard.authz.authorizer import NamespaceResource, Permission, require
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.core.names import namespace_of
from dockyard.db.statements import dialect_insert
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Blob, Manifest, ManifestReference, Repository, RetentionPolicy, RetentionRun, Tag
from dockyard.models.base import utcnow
from dockyard.registry.context import RegistryContext
from dockyard.registry.gc import manifest_candidates
from dockyard.registry.manifests import ManifestService
from dockyard.repos.access import resolve
from dockyard.repos.immutability import guard
from dockyard.repos.orphans import ManifestFacts, going_with
from dockyard.repos.retention_rules import Rule, TagFacts, doomed, parse_rules
from dockyard.signing.formats import IMAGE_SIGNATURE_ARTIFACT_TYPES, signed_digest_of_tag

log = logging.getLogger("dockyard.retention")

ACTOR = "dockyard-retention"
MAX_UNTAGGED_DAYS = 36_500
HISTORY_LIMIT = 100
_ATTACHMENT_TAG = re.compile(r"^sha(256|512)-[0-9a-f]{64,128}(\..*)?$")


@dataclass(frozen=True, slots=True)
class PolicyView:
    namespace: str
    repository: str | None  # None: the namespace's policy
    rules: tuple[Rule, ...]
    keep_signed: bool
    untagged_days: int | None
    scheduled: bool
    inherited: bool  # a repository without a policy of its own: the namespace's applies
    updated_by: str | None
    updated_at: datetime | None


@dataclass
class RunView:
    id: int
    namespace: str
    repository: str
    dry_run: bool
    trigger: str
    actor: str | None
    started_at: datetime
    finished_at: datetime | None
    tags_deleted: int
    manifests_deleted: int
    bytes_freed: int
    tags: list[dict[str, str]] = field(default_factory=list)  # {"tag", "digest"}
    manifests: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Plan:
    tags: list[TagFacts]
    manifests: list[str]
    bytes_freed: int


def _empty(namespace: str, repository: str | None) -> PolicyView:
    return PolicyView(namespace, repository, (), False, None, True, repository is not None, None, None)


def _view(row: Any, repository: str | None, *, inherited: bool) -> PolicyView:
    return PolicyView(
        row.namespace,
        repository,
        parse_rules(json.loads(row.rules)),
        bool(row.keep_signed),
        row.untagged_days,
        bool(row.scheduled),
        inherited,
        row.updated_by,
        row.updated_at,
    )


async def effective_policy(conn: AsyncConnection, repository: str) -> PolicyView:
    """The repository's own policy, else its namespace's (``inherited``), else an empty one (keeps everything)."""
    namespace = namespace_of(repository)
    rows = (
        await conn.execute(
            select(RetentionPolicy).where(
                RetentionPolicy.namespace == namespace, RetentionPolicy.repository.in_([repository, ""])
            )
        )
    ).all()
    found = {row.repository: row for row in rows}
    if repository in found:
        return _view(found[repository], repository, inherited=False)
    if "" in found:
        return _view(found[""], repository, inherited=True)
    return _empty(namespace, repository)


def _run_view(row: Any) -> RunView:
    detail = json.loads(row.detail or "{}")
    return RunView(
        row.id,
        row.namespace,
        row.repository,
        bool(row.dry_run),
        row.trigger,
        row.actor,
        row.started_at,
        row.finished_at,
        row.tags_deleted,
        row.manifests_deleted,
        row.bytes_freed,
        list(detail.get("tags", [])),
        list(detail.get("manifests", [])),
    )


class RetentionService:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    # -- policies -------------------------------------------------------------------------------------------------

    async def _authorize(self, conn: AsyncConnection, actor: Principal, namespace: str, repo: str | None) -> str | None:
        """The repository's registry name (``repo`` given: repository admins) or None (namespace owners)."""
        if repo is None:
            if actor.kind == "open":  # an open server has no accounts: any namespace is the operator's
                return None
            await require(
                conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(namespace), doing="manage retention"
            )
            return None
        record, _ = await resolve(conn, actor, namespace, repo, Level.ADMIN)
        return record.name

    async def get_policy(self, actor: Principal, namespace: str, repo: str | None) -> PolicyView:
        async with self.ctx.db.read(consistent=True) as conn:
            name = await self._authorize(conn, actor, namespace, repo)
            if name is not None:
                return await effective_policy(conn, name)
            row = (
                await conn.execute(
                    select(RetentionPolicy).where(
                        RetentionPolicy.namespace == namespace, RetentionPolicy.repository == ""
                    )
                )
            ).first()
        return _empty(namespace, None) if row is None else _view(row, None, inherited=False)

    async def set_policy(
        self,
        actor: Principal,
        namespace: str,
        repo: str | None,
        *,
        rules: list[Any],
        keep_signed: bool = False,
        untagged_days: int | None = None,
        scheduled: bool = True,
        source_ip: str = "",
    ) -> PolicyView:
        """Replace the namespace's (``repo`` None) or a repository's policy. Raises ``Invalid("retention")``."""
        parsed = parse_rules(rules)
        if untagged_days is not None and not 0 <= untagged_days <= MAX_UNTAGGED_DAYS:
            raise Invalid("retention", f"untagged_days must be from 0 to {MAX_UNTAGGED_DAYS}")
        now = utcnow()
        by = actor.audit_name or None
        values: dict[str, Any] = {
            "rules": json.dumps([r.as_dict() for r in parsed]),
            "keep_signed": keep_signed,
            "untagged_days": untagged_days,
            "scheduled": scheduled,
            "updated_at": now,
            "updated_by": by,
        }
        async with self.ctx.db.write() as conn:
            name = await self._authorize(conn, actor, namespace, repo)
            dialect = dialect_insert(conn)
            upsert = dialect(RetentionPolicy).values(namespace=namespace, repository=name or "", **values)
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[RetentionPolicy.namespace, RetentionPolicy.repository], set_=values
                )
            )
            await record_audit(
                conn,
                namespace,
                "retention.policy.change",
                actor=by,
                target=name or namespace,
                source_ip=source_ip,
                data={"rules": len(parsed), "keep_signed": keep_signed, "untagged_days": untagged_days},
            )
        return PolicyView(namespace, name, parsed, keep_signed, untagged_days, scheduled, False, by, now)

    async def delete_policy(self, actor: Principal, namespace: str, repo: str | None) -> None:
        """Remove the policy (a repository then follows its namespace's). Raises ``NotFound("retention")``."""
        async with self.ctx.db.write() as conn:
            name = await self._authorize(conn, actor, namespace, repo)
            result = await conn.execute(
                delete(RetentionPolicy).where(
                    RetentionPolicy.namespace == namespace, RetentionPolicy.repository == (name or "")
                )
            )
            if result.rowcount == 0:
                raise NotFound("retention", "no retention policy here")

    # -- runs -----------------------------------------------------------------------------------------------------

    async def run(self, actor: Principal, namespace: str, repo: str, *, dry_run: bool) -> RunView:
        """Run the repository's effective policy now (``dry_run``: only report). Repository admins."""
        async with self.ctx.db.read(consistent=True) as conn:
            name = await self._authorize(conn, actor, namespace, repo)
            assert name is not None
            policy = await effective_policy(conn, name)
        return await self.execute(name, policy, dry_run=dry_run, trigger="manual", actor=actor.audit_name or None)

    async def history(self, actor: Principal, namespace: str, repo: str, limit: int = HISTORY_LIMIT) -> list[RunView]:
        """The repository's runs, newest first."""
        async with self.ctx.db.read(consistent=True) as conn:
            name = await self._authorize(conn, actor, namespace, repo)
            rows = (
                await conn.execute(
                    select(RetentionRun)
                    .where(RetentionRun.namespace == namespace, RetentionRun.repository == name)
                    .order_by(RetentionRun.id.desc())
                    .limit(max(1, min(limit, HISTORY_LIMIT)))
                )
            ).all()
            return [_run_view(row) for row in rows]

    async def run_scheduled(self) -> int:
        """One scheduled pass: every repository whose effective policy is scheduled and has something to apply.
        Returns the number of repositories run. Errors of one repository are logged, the others still run."""
        async with self.ctx.db.read(consistent=True) as conn:
            policies = (await conn.execute(select(RetentionPolicy).where(RetentionPolicy.scheduled))).all()
            names: set[str] = set()
            for policy in policies:
                if policy.repository:
                    names.add(policy.repository)
                else:
                    names.update(
                        (await conn.execute(select(Repository.name).where(Repository.namespace == policy.namespace)))
                        .scalars()
                        .all()
                    )
        ran = 0
        for name in sorted(names):
            try:
                async with self.ctx.db.read(consistent=True) as conn:
                    if (await conn.execute(select(Repository.id).where(Repository.name == name))).first() is None:
                        continue
                    policy_view = await effective_policy(conn, name)
                if not policy_view.scheduled or (not policy_view.rules and policy_view.untagged_days is None):
                    continue
                await self.execute(name, policy_view, dry_run=False, trigger="schedule", actor=ACTOR)
                ran += 1
            except Exception:
                log.exception("retention run of %s failed", name)
        return ran

    async def execute(
        self, repository: str, policy: PolicyView, *, dry_run: bool, trigger: str, actor: str | None
    ) -> RunView:
        """Plan and (unless ``dry_run``) apply ``policy`` to ``repository``; record the run."""
        started = utcnow()
        async with self.ctx.db.read(consistent=True) as conn:
            plan = await self._plan(conn, repository, policy, started)
        deleted_tags = plan.tags
        deleted_manifests = plan.manifests
        if not dry_run:
            deleted_tags, deleted_manifests = await self._apply(repository, plan)
        tag_rows = [{"tag": t.name, "digest": t.digest} for t in deleted_tags]
        finished = utcnow()
        view = RunView(
            0,
            namespace_of(repository),
            repository,
            dry_run,
            trigger,
            actor,
            started,
            finished,
            len(deleted_tags),
            len(deleted_manifests),
            plan.bytes_freed,
            tag_rows,
            list(deleted_manifests),
        )
        async with self.ctx.db.write() as conn:
            view.id = (
                await conn.execute(
                    insert(RetentionRun)
                    .values(
                        namespace=view.namespace,
                        repository=repository,
                        dry_run=dry_run,
                        trigger=trigger,
                        actor=actor,
                        started_at=started,
                        finished_at=finished,
                        tags_deleted=view.tags_deleted,
                        manifests_deleted=view.manifests_deleted,
                        bytes_freed=view.bytes_freed,
                        detail=json.dumps({"tags": tag_rows, "manifests": view.manifests}),
                    )
                    .returning(RetentionRun.id)
                )
            ).scalar_one()
        log.info(
            "retention of %s (%s, dry run %s): %d tags, %d manifests",
            repository,
            trigger,
            dry_run,
            view.tags_deleted,
            view.manifests_deleted,
        )
        return view

    async def _apply(self, repository: str, plan: _Plan) -> tuple[list[TagFacts], list[str]]:
        manifests = ManifestService(self.ctx)
        tags: list[TagFacts] = []
        for tag in plan.tags:
            try:
                await manifests.delete(repository, tag.name, actor=ACTOR, expect_digest=tag.digest)
            except (NotFound, Conflict) as exc:  # deleted or moved since the plan: not ours to delete any more
                log.info("retention skipped %s:%s: %s", repository, tag.name, exc.message)
                continue
            tags.append(tag)
        removed: list[str] = []
        for digest in plan.manifests:
            try:
                await manifests.delete(repository, digest, actor=ACTOR)
            except NotFound:
                continue
            removed.append(digest)
        return tags, removed

    async def _plan(self, conn: AsyncConnection, repository: str, policy: PolicyView, now: datetime) -> _Plan:
        repo_id = (await conn.execute(select(Repository.id).where(Repository.name == repository))).scalar_one_or_none()
        if repo_id is None:
            raise NotFound("repository", "repository not found", {"name": repository})
        rows = (
            await conn.execute(
                select(Tag.name, Manifest.digest, Tag.updated_at, Tag.last_pulled_at)
                .join(Manifest, Manifest.id == Tag.manifest_id)
                .where(Tag.repository_id == repo_id)
            )
        ).all()
        every = [TagFacts(r[0], r[1], r[2], r[3]) for r in rows]
        candidates = [t for t in every if _ATTACHMENT_TAG.match(t.name) is None]
        signed: set[str] = set()
        if policy.keep_signed:
            signed = {d for d in map(signed_digest_of_tag, (t.name for t in every if t.name.endswith(".sig"))) if d}
            signed |= {
                digest
                for digest in (
                    await conn.execute(
                        select(Manifest.subject_digest).where(
                            Manifest.repository_id == repo_id,
                            Manifest.subject_digest.is_not(None),
                            Manifest.artifact_type.in_(IMAGE_SIGNATURE_ARTIFACT_TYPES),
                        )
                    )
                ).scalars()
                if digest
            }
        rules = await guard(conn, repository)  # tags an immutability rule covers are never deleted
        tags = [
            t
            for t in doomed(candidates, policy.rules, now)
            if t.digest not in signed and (rules is None or rules.match(t.name) is None)
        ]
        untagged: list[str] = []
        if policy.untagged_days is not None:
            cutoff = now - timedelta(days=policy.untagged_days)
            found = await conn.execute(manifest_candidates(cutoff).where(Manifest.repository_id == repo_id))
            untagged = [r[1] for r in found]
            if untagged:  # …and what only they keep: an untagged index's platforms, a deleted image's signatures
                untagged += await self._going_with(conn, repo_id, untagged, cutoff)
        return _Plan(tags, untagged, await self._freed(conn, repo_id, every, tags, untagged))

    @staticmethod
    async def _going_with(conn: AsyncConnection, repo_id: int, deleted: list[str], cutoff: datetime) -> list[str]:
        """The untagged manifests that go with ``deleted`` (``repos.orphans.going_with``)."""
        tagged = select(Tag.manifest_id).where(Tag.repository_id == repo_id)
        rows = await conn.execute(
            select(Manifest.digest, Manifest.created_at, Manifest.subject_digest, Manifest.id.in_(tagged)).where(
                Manifest.repository_id == repo_id
            )
        )
        manifests = {row[0]: ManifestFacts(row[0], row[1], row[2], bool(row[3])) for row in rows}
        parent = aliased(Manifest)
        listed_by: dict[str, set[str]] = {}
        for parent_digest, child in await conn.execute(
            select(parent.digest, ManifestReference.digest)
            .join(ManifestReference, ManifestReference.manifest_id == parent.id)
            .where(parent.repository_id == repo_id, ManifestReference.kind == "manifest")
        ):
            listed_by.setdefault(child, set()).add(parent_digest)
        return going_with(deleted, manifests, listed_by, cutoff)

    @staticmethod
    async def _freed(
        conn: AsyncConnection, repo_id: int, every: list[TagFacts], tags: list[TagFacts], untagged: list[str]
    ) -> int:
        """Bytes of the blobs that only manifests left untagged or deleted by the plan use in the repository."""
        doomed_tags = {t.name for t in tags}
        still_tagged = {t.digest for t in every if t.name not in doomed_tags}
        gone = ({t.digest for t in tags} - still_tagged) | set(untagged)
        if not gone:
            return 0
        refs = (
            await conn.execute(
                select(Manifest.digest, ManifestReference.digest)
                .join(
                    ManifestReference,
                    and_(ManifestReference.manifest_id == Manifest.id, ManifestReference.kind == "blob"),
                )
                .where(Manifest.repository_id == repo_id)
            )
        ).all()
        used_by_gone = {blob for manifest, blob in refs if manifest in gone}
        used_by_rest = {blob for manifest, blob in refs if manifest not in gone}
        freed = sorted(used_by_gone - used_by_rest)
        total = 0
        for start in range(0, len(freed), 500):
            total += int(
                (
                    await conn.execute(
                        select(func.coalesce(func.sum(Blob.size), 0)).where(Blob.digest.in_(freed[start : start + 500]))
                    )
                ).scalar_one()
            )
        return total
