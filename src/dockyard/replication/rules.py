"""Replication rules as a namespace's owners manage them, and their runs' history.

Only the namespace's owners (``authz.authorizer.require`` with ``namespace:admin``) add, list, run and remove rules
or read runs: a rule holds another registry's credentials, and makes this server send requests to the remote's
URL, which the SSRF guard checks as it checks webhook URLs (``replication_allowed_hosts`` lists the exceptions).
The remote's password is sealed with the server secret and never shown again. A run is a ``replication_runs`` row
and its ``replication.run`` job, written in one transaction (``enqueue_run``).
"""

from __future__ import annotations

import builtins
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox
from dockyard.authz.authorizer import NamespaceResource, Permission, require
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.jobs.queue import enqueue
from dockyard.models import ReplicationResult, ReplicationRule, ReplicationRun
from dockyard.models.base import utcnow
from dockyard.proxy.manage import Upstream, normalize_url
from dockyard.replication.transport import PinnedTransport
from dockyard.settings import Settings
from dockyard.webhooks.ssrf import AddressPolicy, DeliveryRefused, ResolutionFailed, Resolver, check_url

RUN_JOB: Final = "replication.run"
PUSH, PULL = "push", "pull"
MANUAL, EVENT, SCHEDULE = "manual", "event", "schedule"
QUEUED, RUNNING, RETRYING, SUCCEEDED, FAILED = "queued", "running", "retrying", "succeeded", "failed"
MAX_RESULTS = 1000


@dataclass(frozen=True, slots=True)
class RuleInput:
    name: str
    direction: str
    remote_url: str
    remote_namespace: str = ""
    username: str | None = None
    password: str | None = None
    repository_filter: str = "*"
    tag_filter: str = "*"
    replicate_deletes: bool = False
    trigger: str = MANUAL
    schedule_seconds: int | None = None
    bandwidth_limit_kib: int | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class RuleView:
    """A rule as listed (never its password)."""

    id: int
    namespace: str
    name: str
    direction: str
    remote_url: str
    remote_namespace: str
    username: str | None
    has_password: bool
    repository_filter: str
    tag_filter: str
    replicate_deletes: bool
    trigger: str
    schedule_seconds: int | None
    bandwidth_limit_kib: int | None
    enabled: bool
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ResultView:
    attempt: int
    source: str
    destination: str
    digest: str | None
    result: str
    reason: str | None
    bytes: int


@dataclass(frozen=True, slots=True)
class RunView:
    id: int
    rule: str
    trigger: str
    scope: dict[str, Any]
    state: str
    attempts: int
    copied: int
    skipped: int
    deleted: int
    failed: int
    bytes_copied: int
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    results: tuple[ResultView, ...] = ()


def rule_view(row: Row[Any]) -> RuleView:
    return RuleView(
        row.id,
        row.namespace,
        row.name,
        row.direction,
        row.remote_url,
        row.remote_namespace,
        row.username,
        row.password is not None,
        row.repository_filter,
        row.tag_filter,
        bool(row.replicate_deletes),
        row.trigger,
        row.schedule_seconds,
        row.bandwidth_limit_kib,
        bool(row.enabled),
        row.created_by,
        row.created_at,
    )


def run_view(row: Row[Any], rule: str, results: tuple[ResultView, ...] = ()) -> RunView:
    return RunView(
        row.id,
        rule,
        row.trigger,
        json.loads(row.scope or "{}"),
        row.state,
        row.attempts,
        row.copied,
        row.skipped,
        row.deleted,
        row.failed,
        row.bytes_copied,
        row.error,
        row.created_by,
        row.created_at,
        row.started_at,
        row.finished_at,
        results,
    )


def upstream_of(row: Row[Any], box: SecretBox) -> Upstream:
    """The rule's remote as the upstream client takes it (password opened)."""
    password = box.open(row.password).decode() if row.password is not None else None
    return Upstream(row.namespace, row.remote_url, row.username, password, 0)


def matches(pattern: str, value: str) -> bool:
    """Glob match (``*`` also crosses ``/``), as the rule's filters are written."""
    return fnmatch.fnmatchcase(value, pattern or "*")


async def check_remote(url: str, settings: Settings) -> None:
    """Refuse a remote the SSRF guard refuses (``Invalid``), unless ``replication_allowed_hosts`` allows it."""
    try:
        await check_url(url, AddressPolicy(settings.replication_allowed_hosts))
    except DeliveryRefused as exc:
        raise Invalid("replication", f"the remote registry may not be reached: {exc}") from exc
    except ResolutionFailed as exc:
        raise Invalid("replication", f"the remote registry's host cannot be resolved: {exc}") from exc


def pinned_transport(settings: Settings, resolver: Resolver | None = None) -> PinnedTransport:
    """The connections of a replication's requests, each redirect hop included: the host resolved once, every
    address checked with the SSRF guard, and the connection made to a checked address (pinned: a DNS answer that
    changes after the check is never used), so that a remote cannot send Dockyard to an address a rule could not
    name itself."""
    return PinnedTransport(AddressPolicy(settings.replication_allowed_hosts), resolver=resolver)


def _validate(spec: RuleInput) -> None:
    if not spec.name or len(spec.name) > 100 or not spec.name.replace("-", "").replace("_", "").isalnum():
        raise Invalid("replication", "a rule's name is 1 to 100 letters, digits, '-' and '_'")
    if spec.direction not in (PUSH, PULL):
        raise Invalid("replication", "direction is push or pull")
    if spec.trigger not in (MANUAL, EVENT, SCHEDULE):
        raise Invalid("replication", "trigger is manual, event or schedule")
    if spec.trigger == EVENT and spec.direction != PUSH:
        raise Invalid("replication", "only push rules run on events (a pull rule runs on a schedule or by hand)")
    if spec.trigger == SCHEDULE and not spec.schedule_seconds:
        raise Invalid("replication", "a scheduled rule needs schedule_seconds")
    if spec.schedule_seconds is not None and not 60 <= spec.schedule_seconds <= 366 * 86400:
        raise Invalid("replication", "schedule_seconds is between 60 and a year")
    if spec.bandwidth_limit_kib is not None and spec.bandwidth_limit_kib < 1:
        raise Invalid("replication", "bandwidth_limit_kib is at least 1")
    if (spec.username is None) != (spec.password is None):
        raise Invalid("replication", "give both username and password, or neither")
    for pattern in (spec.repository_filter, spec.tag_filter, spec.remote_namespace):
        if len(pattern) > 255:
            raise Invalid("replication", "filters and the remote namespace are at most 255 characters")


async def enqueue_run(
    conn: AsyncConnection, rule_id: int, namespace: str, trigger: str, actor: str, scope: dict[str, Any], attempts: int
) -> int:
    """Write a queued run of rule ``rule_id`` and its job in ``conn``'s transaction; the run's id. Runs of one
    rule run one at a time, in order (the job's ordering key): a tag's deletion never overtakes its copy."""
    result = await conn.execute(
        insert(ReplicationRun)
        .values(
            rule_id=rule_id,
            namespace=namespace,
            trigger=trigger,
            scope=json.dumps(scope, separators=(",", ":")),
            state=QUEUED,
            attempts=0,
            copied=0,
            skipped=0,
            deleted=0,
            failed=0,
            bytes_copied=0,
            created_by=actor,
            created_at=utcnow(),
        )
        .returning(ReplicationRun.id)
    )
    run_id = int(result.scalar_one())
    await enqueue(conn, RUN_JOB, {"run": run_id}, ordering_key=f"replication:{rule_id}", max_attempts=max(attempts, 1))
    return run_id


class ReplicationService:
    """Rules and runs of a namespace, for its owners. Raises ``NotFound`` (no such namespace, rule or run),
    ``Denied`` (not an owner), ``Conflict`` (a rule of that name exists) and ``Invalid``."""

    def __init__(self, db: Database, box: SecretBox, settings: Settings, wake: Callable[[], None]) -> None:
        self.db = db
        self.box = box
        self.settings = settings
        self.wake = wake

    async def _owner(self, conn: AsyncConnection, actor: Principal, namespace: str) -> None:
        await require(
            conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(namespace), doing="manage its replication"
        )

    async def _rule(self, conn: AsyncConnection, namespace: str, name: str) -> Row[Any]:
        row = (
            await conn.execute(
                select(ReplicationRule.__table__).where(
                    ReplicationRule.namespace == namespace, ReplicationRule.name == name
                )
            )
        ).first()
        if row is None:
            raise NotFound("replication", "no such replication rule", {"namespace": namespace, "rule": name[:100]})
        return row

    async def add(self, actor: Principal, namespace: str, spec: RuleInput, *, source_ip: str = "") -> RuleView:
        async with self.db.read() as conn:
            await self._owner(conn, actor, namespace)
        _validate(spec)
        url = normalize_url(spec.remote_url)
        await check_remote(url, self.settings)
        now = utcnow()
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            taken = select(ReplicationRule.id).where(
                ReplicationRule.namespace == namespace, ReplicationRule.name == spec.name
            )
            if (await conn.execute(taken)).first() is not None:
                raise Conflict("replication", "a replication rule of this name exists", {"rule": spec.name})
            await conn.execute(
                insert(ReplicationRule).values(
                    namespace=namespace,
                    name=spec.name,
                    direction=spec.direction,
                    remote_url=url,
                    remote_namespace=spec.remote_namespace.strip("/"),
                    username=spec.username,
                    password=self.box.seal(spec.password.encode()) if spec.password is not None else None,
                    repository_filter=spec.repository_filter or "*",
                    tag_filter=spec.tag_filter or "*",
                    replicate_deletes=spec.replicate_deletes,
                    trigger=spec.trigger,
                    schedule_seconds=spec.schedule_seconds,
                    bandwidth_limit_kib=spec.bandwidth_limit_kib,
                    enabled=spec.enabled,
                    created_by=actor.audit_name,
                    created_at=now,
                    updated_at=now,
                )
            )
            await record_audit(
                conn,
                namespace,
                "replication.create",
                actor=actor.audit_name,
                target=spec.name,
                source_ip=source_ip,
                data={"direction": spec.direction, "remote": url, "trigger": spec.trigger},
            )
            return rule_view(await self._rule(conn, namespace, spec.name))

    async def list(self, actor: Principal, namespace: str) -> builtins.list[RuleView]:
        async with self.db.read() as conn:
            await self._owner(conn, actor, namespace)
            rows = await conn.execute(
                select(ReplicationRule.__table__)
                .where(ReplicationRule.namespace == namespace)
                .order_by(ReplicationRule.name)
            )
            return [rule_view(row) for row in rows.all()]

    async def get(self, actor: Principal, namespace: str, name: str) -> RuleView:
        async with self.db.read() as conn:
            await self._owner(conn, actor, namespace)
            return rule_view(await self._rule(conn, namespace, name))

    async def remove(self, actor: Principal, namespace: str, name: str, *, source_ip: str = "") -> None:
        """Remove the rule with its runs' history (a run in progress ends when its job finds the rule gone)."""
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            rule = await self._rule(conn, namespace, name)
            runs = select(ReplicationRun.id).where(ReplicationRun.rule_id == rule.id)
            await conn.execute(delete(ReplicationResult).where(ReplicationResult.run_id.in_(runs)))
            await conn.execute(delete(ReplicationRun).where(ReplicationRun.rule_id == rule.id))
            await conn.execute(delete(ReplicationRule).where(ReplicationRule.id == rule.id))
            await record_audit(
                conn, namespace, "replication.delete", actor=actor.audit_name, target=name, source_ip=source_ip
            )

    async def run(self, actor: Principal, namespace: str, name: str, *, source_ip: str = "") -> RunView:
        """Start a run of the rule now (whatever its trigger; a disabled rule too: someone asked)."""
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            rule = await self._rule(conn, namespace, name)
            attempts = self.settings.replication_max_attempts
            run_id = await enqueue_run(conn, rule.id, namespace, MANUAL, actor.audit_name, {}, attempts)
            await record_audit(
                conn,
                namespace,
                "replication.run",
                actor=actor.audit_name,
                target=name,
                source_ip=source_ip,
                data={"run": run_id},
            )
            row = (await conn.execute(select(ReplicationRun.__table__).where(ReplicationRun.id == run_id))).one()
        self.wake()
        return run_view(row, name)

    async def runs(self, actor: Principal, namespace: str, name: str, limit: int = 50) -> builtins.list[RunView]:
        """The rule's runs, newest first."""
        async with self.db.read() as conn:
            await self._owner(conn, actor, namespace)
            rule = await self._rule(conn, namespace, name)
            rows = await conn.execute(
                select(ReplicationRun.__table__)
                .where(ReplicationRun.rule_id == rule.id)
                .order_by(ReplicationRun.id.desc())
                .limit(max(1, min(limit, 500)))
            )
            return [run_view(row, name) for row in rows.all()]

    async def run_detail(self, actor: Principal, namespace: str, run_id: int) -> RunView:
        """One run with its per-artifact results (every attempt's, in order; at most ``MAX_RESULTS``)."""
        async with self.db.read() as conn:
            await self._owner(conn, actor, namespace)
            row = (
                await conn.execute(
                    select(ReplicationRun.__table__, ReplicationRule.name.label("rule_name"))
                    .join(ReplicationRule, ReplicationRule.id == ReplicationRun.rule_id)
                    .where(ReplicationRun.id == run_id, ReplicationRun.namespace == namespace)
                )
            ).first()
            if row is None:
                raise NotFound("replication", "no such replication run", {"run": run_id})
            results = await conn.execute(
                select(ReplicationResult.__table__)
                .where(ReplicationResult.run_id == run_id)
                .order_by(ReplicationResult.id)
                .limit(MAX_RESULTS)
            )
            views = tuple(
                ResultView(r.attempt, r.source, r.destination, r.digest, r.result, r.reason, r.bytes)
                for r in results.all()
            )
        return run_view(row, row.rule_name, views)
