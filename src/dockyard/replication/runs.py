"""One attempt of a replication run: which repositories and tags the rule (and the run's scope) selects, the
copies and deletions, and the bookkeeping — each artifact's result as it happens, the run's state at the end, and
its event (``replication.completed`` / ``replication.failed``) in the same transaction as the final state.

Names: local ``<namespace>/<path>`` is remote ``<remote_namespace>/<path>`` (the same name when the rule has no
remote namespace).
A push rule's source is this Dockyard, a pull rule's the remote. The rule's ``repository_filter`` matches
``<path>``, its ``tag_filter`` the tag; cosign's signature tags are not images: they travel with what they sign.

A run's scope narrows it: ``{"repository", "tags"}`` (pushed tags), ``{"repository", "subject"}`` (a signature or
referrer pushed: the tags of the image it is about, whose referrers are then copied), ``{"repository",
"delete_tags"}`` (deleted tags). An empty scope is everything, and — with ``replicate_deletes`` — removes the
destination's tags (matching the filter) that the source no longer has.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, insert, select, update

from dockyard.auth.secrets import SecretBox
from dockyard.db.engine import Database
from dockyard.events.outbox import REPLICATION_COMPLETED, REPLICATION_FAILED, record_event
from dockyard.models import ReplicationResult, ReplicationRule, ReplicationRun
from dockyard.models.base import utcnow
from dockyard.proxy.upstream import UpstreamClient
from dockyard.registry.services import Registry
from dockyard.replication.copier import COPIED, DELETED, FAILED, SKIPPED, Copier, Outcome, signature_subject
from dockyard.replication.endpoints import Endpoint, ListingRefused, LocalRegistry, RemoteRegistry
from dockyard.replication.rules import FAILED as RUN_FAILED
from dockyard.replication.rules import (
    PUSH,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    check_remote,
    matches,
    upstream_of,
)
from dockyard.settings import Settings

log = logging.getLogger("dockyard.replication")
Record = Callable[[Outcome], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Names:
    """Maps repository names between the rule's two sides."""

    namespace: str
    remote_namespace: str
    push: bool

    def _local(self, path: str) -> str:
        return f"{self.namespace}/{path}"

    def _remote(self, path: str) -> str:
        return f"{self.remote_namespace or self.namespace}/{path}"

    @property
    def source_prefix(self) -> str:
        return f"{self.namespace}/" if self.push else f"{self.remote_namespace or self.namespace}/"

    def path(self, source: str) -> str:
        return source.removeprefix(self.source_prefix)

    def destination(self, source: str) -> str:
        path = self.path(source)
        return self._remote(path) if self.push else self._local(path)


async def plan_repository(
    copier: Copier, names: Names, rule: Row[Any], source_repo: str, scope: dict[str, Any], record: Record
) -> None:
    """Copy (or delete) what the rule and the scope select in one source repository."""
    destination = names.destination(source_repo)
    source_tags = await copier.source.tags(source_repo)
    for tag in scope.get("delete_tags") or []:
        if matches(rule.tag_filter, tag) and signature_subject(tag) is None:
            await record(await copier.delete_tag(source_repo, destination, tag))
    if scope.get("delete_tags"):
        return
    images = [tag for tag in source_tags if signature_subject(tag) is None and matches(rule.tag_filter, tag)]
    if scope.get("tags"):
        wanted = set(scope["tags"])
        images = [tag for tag in images if tag in wanted]
    elif scope.get("subject"):
        subject = str(scope["subject"])
        images = [tag for tag in images if await copier.source.manifest_digest(source_repo, tag) == subject]
    for tag in images:
        for outcome in await copier.copy_tag(source_repo, destination, tag, source_tags):
            await record(outcome)
    if not scope and rule.replicate_deletes:
        present = set(source_tags)
        for tag in await copier.destination.tags(destination):
            if tag not in present and signature_subject(tag) is None and matches(rule.tag_filter, tag):
                await record(await copier.delete_tag(source_repo, destination, tag))


def named(repository_filter: str) -> bool:
    """Whether a rule's repository filter names one repository (no pattern characters)."""
    return bool(repository_filter) and not any(c in repository_filter for c in "*?[")


async def replicate(copier: Copier, names: Names, rule: Row[Any], scope: dict[str, Any], record: Record) -> None:
    """Every repository the rule and scope select; a repository whose tags cannot be listed is a failed artifact.
    A rule that names its repository lists only that repository's tags; a pattern lists the source's repositories
    first (``ListingRefused`` when the source does not list them)."""
    if scope.get("repository"):
        repositories = [str(scope["repository"])]
    elif named(rule.repository_filter):  # one repository, named: its tags are listed, no catalog is needed
        repositories = [names.source_prefix + rule.repository_filter]
    else:
        found = await copier.source.repositories(names.source_prefix)
        repositories = [name for name in found if matches(rule.repository_filter, names.path(name))]
    for source_repo in repositories:
        if not source_repo.startswith(names.source_prefix) or not matches(
            rule.repository_filter, names.path(source_repo)
        ):
            continue
        try:
            await plan_repository(copier, names, rule, source_repo, scope, record)
        except Exception as exc:
            reason = str(exc)[:1000] or type(exc).__name__
            await record(Outcome(source_repo, names.destination(source_repo), None, FAILED, reason))


class RunExecutor:
    """Runs attempts of replication runs in a process that runs jobs."""

    def __init__(self, db: Database, registry: Registry, client: UpstreamClient, settings: Settings) -> None:
        self.db = db
        self.registry = registry
        self.client = client
        self.settings = settings
        self.box = SecretBox(settings.secret_key)

    async def attempt(self, run_id: int, attempt: int, last: bool) -> bool:
        """Run attempt ``attempt`` of run ``run_id``. True when the run is over (succeeded, failed, or its rule
        gone); False when artifacts failed and another attempt should follow (``last`` forbids it)."""
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    select(ReplicationRun.__table__, ReplicationRule.__table__.c.name.label("rule_name"))
                    .join(ReplicationRule, ReplicationRule.id == ReplicationRun.rule_id)
                    .where(ReplicationRun.id == run_id)
                )
            ).first()
            if row is None or row.state in (SUCCEEDED, RUN_FAILED):
                return True
            rule = (
                await conn.execute(select(ReplicationRule.__table__).where(ReplicationRule.id == row.rule_id))
            ).one()
            await conn.execute(
                update(ReplicationRun)
                .where(ReplicationRun.id == run_id)
                .values(state=RUNNING, attempts=attempt, started_at=row.started_at or utcnow(), skipped=0, failed=0)
            )
        counts = {COPIED: 0, SKIPPED: 0, DELETED: 0, FAILED: 0}
        sent = 0
        touched: list[str] = []  # the local repository of the first outcome: where the run's event is sent

        async def record(outcome: Outcome) -> None:
            nonlocal sent
            if not touched:
                local = outcome.source if rule.direction == PUSH else outcome.destination
                touched.append(local.split("@", 1)[0].rsplit(":", 1)[0] if "/" in local else "")
            counts[outcome.result] += 1
            sent += outcome.bytes
            async with self.db.write() as conn:
                await conn.execute(
                    insert(ReplicationResult).values(
                        run_id=run_id,
                        attempt=attempt,
                        source=outcome.source[:512],
                        destination=outcome.destination[:512],
                        digest=outcome.digest,
                        result=outcome.result,
                        reason=outcome.reason,
                        bytes=outcome.bytes,
                        created_at=utcnow(),
                    )
                )

        error: str | None = None
        final = False  # an error that another attempt would meet again
        try:
            await check_remote(rule.remote_url, self.settings)
            await replicate(self._copier(rule), self._names(rule), rule, json.loads(row.scope or "{}"), record)
        except Exception as exc:  # the listing of the source failed, or the remote may not be reached
            error = (getattr(exc, "message", None) or str(exc) or type(exc).__name__)[:1000]
            final = isinstance(exc, ListingRefused)
            log.info("replication run %s (rule %s) attempt %s: %s", run_id, rule.name, attempt, error)
        over = last or final or (error is None and counts[FAILED] == 0)
        await self._finish(row, rule, counts, sent, error, over, touched[0] if touched else None)
        return over

    def _names(self, rule: Row[Any]) -> Names:
        return Names(rule.namespace, rule.remote_namespace, rule.direction == PUSH)

    def _copier(self, rule: Row[Any]) -> Copier:
        local = LocalRegistry(self.registry, f"replication:{rule.name}")
        remote: Endpoint = RemoteRegistry(self.client, upstream_of(rule, self.box))
        limit = rule.bandwidth_limit_kib * 1024 if rule.bandwidth_limit_kib else None
        names = self._names(rule)
        prefix = f"{rule.namespace}/"

        async def pushed_elsewhere(digest: str) -> list[str]:
            # the remote names of this namespace's repositories holding the blob (replicated before, probably)
            holders = await local.holders(digest, prefix)
            return [names.destination(name) for name in holders if matches(rule.repository_filter, names.path(name))]

        async def held_here(digest: str) -> list[str]:
            return await local.holders(digest, prefix)

        if rule.direction == PUSH:
            return Copier(local, remote, limit, pushed_elsewhere)
        return Copier(remote, local, limit, held_here)

    async def _finish(
        self,
        run: Row[Any],
        rule: Row[Any],
        counts: dict[str, int],
        sent: int,
        error: str | None,
        over: bool,
        repository: str | None,
    ) -> None:
        failed = counts[FAILED] > 0 or error is not None
        state = (RUN_FAILED if failed else SUCCEEDED) if over else RETRYING
        if error is None and counts[FAILED]:
            error = f"{counts[FAILED]} artifact(s) failed"
        async with self.db.write() as conn:
            await conn.execute(
                update(ReplicationRun)
                .where(ReplicationRun.id == run.id)
                .values(
                    state=state,
                    copied=ReplicationRun.copied + counts[COPIED],
                    deleted=ReplicationRun.deleted + counts[DELETED],
                    bytes_copied=ReplicationRun.bytes_copied + sent,
                    skipped=counts[SKIPPED],
                    failed=counts[FAILED],
                    error=error,
                    finished_at=utcnow() if over else None,
                )
            )
            if over:
                summary = {
                    "run": run.id,
                    "rule": rule.name,
                    "direction": rule.direction,
                    "remote": rule.remote_url,
                    "trigger": run.trigger,
                    "state": state,
                    "copied": run.copied + counts[COPIED],
                    "skipped": counts[SKIPPED],
                    "deleted": run.deleted + counts[DELETED],
                    "failed": counts[FAILED],
                    "error": error,
                }
                await record_event(
                    conn,
                    REPLICATION_FAILED if failed else REPLICATION_COMPLETED,
                    repository=repository or None,
                    actor=run.created_by or None,
                    payload={"namespace": rule.namespace, "replication": summary},
                )
