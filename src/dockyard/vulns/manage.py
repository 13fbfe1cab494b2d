"""Managing a namespace's vulnerability settings: its pull policies (namespace default and per-repository
overrides), its allowlist and its OpenVEX documents. Only the namespace's owners read or change them (the one
authorizer, ``authz.authorizer.require``: an unknown namespace is ``NotFound``, a non-owner ``Denied``); every
change is audited in its transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.authorizer import NamespaceResource, Permission, require
from dockyard.authz.principal import Principal
from dockyard.core.jsonparse import loads_limited
from dockyard.core.names import namespace_of, validate_name
from dockyard.db.engine import Database
from dockyard.errors import Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import VulnAllowlistEntry, VulnPolicy, VulnVex
from dockyard.models.base import utcnow
from dockyard.vulns.osv import SEVERITIES
from dockyard.vulns.suppress import AllowEntry, Suppressions, VexStatement, parse_openvex

MODES = ("off", "warn", "enforce")
POLICY_SEVERITIES = SEVERITIES[1:]  # low … critical
UNSCANNED = ("serve", "refuse")
MAX_ALLOWLIST = 1000
MAX_DOCUMENTS = 200
MAX_VEX_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PolicyView:
    namespace: str
    repository: str | None
    mode: str
    severity: str
    unscanned: str
    inherited: bool
    updated_by: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class AllowlistView:
    vulnerability: str
    reason: str
    expires_at: datetime | None
    expired: bool
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VexDocumentView:
    document: str
    statements: int
    created_by: str
    created_at: datetime


async def load_suppressions(conn: AsyncConnection, namespace: str) -> Suppressions:
    statements = (await conn.execute(select(VulnVex).where(VulnVex.namespace == namespace))).all()
    allow = (await conn.execute(select(VulnAllowlistEntry).where(VulnAllowlistEntry.namespace == namespace))).all()
    return Suppressions(
        [
            VexStatement(s.vulnerability, s.product, s.subcomponent, s.status, s.justification, s.statement_at)
            for s in statements
        ],
        [AllowEntry(a.vulnerability, a.reason, a.expires_at) for a in allow],
    )


class VulnSettingsService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _owner(self, conn: AsyncConnection, actor: Principal, namespace: str) -> None:
        await require(
            conn,
            actor,
            Permission.NAMESPACE_ADMIN,
            NamespaceResource(namespace),
            doing="manage its vulnerability policy",
        )

    # -- policies ---------------------------------------------------------------------------------------------

    async def get_policy(self, actor: Principal, namespace: str, repository: str | None = None) -> PolicyView:
        async with self.db.read(consistent=True) as conn:
            await self._owner(conn, actor, namespace)
            rows = {
                r.repository: r
                for r in (await conn.execute(select(VulnPolicy).where(VulnPolicy.namespace == namespace))).all()
            }
        own = rows.get(repository or "")
        row = own or rows.get("")
        if row is None:
            return PolicyView(namespace, repository, "off", "high", "serve", True, "", None)
        return PolicyView(
            namespace, repository, row.mode, row.severity, row.unscanned, own is None, row.updated_by, row.updated_at
        )

    async def set_policy(
        self,
        actor: Principal,
        namespace: str,
        repository: str | None,
        *,
        mode: str,
        severity: str,
        unscanned: str,
        source_ip: str = "",
    ) -> PolicyView:
        if mode not in MODES or severity not in POLICY_SEVERITIES or unscanned not in UNSCANNED:
            raise Invalid("policy", "mode, severity or unscanned has an unknown value")
        if repository is not None:
            validate_name(repository)
            if namespace_of(repository) != namespace:
                raise Invalid("policy", "the repository is not in this namespace")
        scope = repository or ""
        values = {"mode": mode, "severity": severity, "unscanned": unscanned, "updated_by": actor.audit_name or ""}
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            now = utcnow()
            done = await conn.execute(
                update(VulnPolicy)
                .where(VulnPolicy.namespace == namespace, VulnPolicy.repository == scope)
                .values(**values, updated_at=now)
            )
            if done.rowcount == 0:
                await conn.execute(
                    insert(VulnPolicy).values(namespace=namespace, repository=scope, updated_at=now, **values)
                )
            await record_audit(
                conn,
                namespace,
                "vulnerability.policy.change",
                actor=actor.audit_name,
                target=repository or namespace,
                source_ip=source_ip,
                data={"mode": mode, "severity": severity, "unscanned": unscanned},
            )
        return PolicyView(namespace, repository, mode, severity, unscanned, False, actor.audit_name or "", now)

    # -- allowlist --------------------------------------------------------------------------------------------

    async def list_allowlist(self, actor: Principal, namespace: str) -> list[AllowlistView]:
        async with self.db.read(consistent=True) as conn:
            await self._owner(conn, actor, namespace)
            rows = (
                await conn.execute(
                    select(VulnAllowlistEntry)
                    .where(VulnAllowlistEntry.namespace == namespace)
                    .order_by(VulnAllowlistEntry.vulnerability)
                )
            ).all()
        now = utcnow()
        return [
            AllowlistView(
                r.vulnerability,
                r.reason,
                r.expires_at,
                r.expires_at is not None and r.expires_at <= now,
                r.created_by,
                r.created_at,
            )
            for r in rows
        ]

    async def allow(
        self,
        actor: Principal,
        namespace: str,
        vulnerability: str,
        *,
        reason: str,
        expires_at: datetime | None,
        source_ip: str = "",
    ) -> AllowlistView:
        """Add (or replace) the entry for ``vulnerability``."""
        now = utcnow()
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            await conn.execute(
                delete(VulnAllowlistEntry).where(
                    VulnAllowlistEntry.namespace == namespace, VulnAllowlistEntry.vulnerability == vulnerability
                )
            )
            count = (
                await conn.execute(
                    select(func.count())
                    .select_from(VulnAllowlistEntry)
                    .where(VulnAllowlistEntry.namespace == namespace)
                )
            ).scalar_one()
            if count >= MAX_ALLOWLIST:
                raise Invalid("allowlist", f"at most {MAX_ALLOWLIST} allowlist entries per namespace")
            await conn.execute(
                insert(VulnAllowlistEntry).values(
                    namespace=namespace,
                    vulnerability=vulnerability,
                    reason=reason,
                    expires_at=expires_at,
                    created_by=actor.audit_name or "",
                    created_at=now,
                )
            )
            await record_audit(
                conn,
                namespace,
                "vulnerability.allowlist.add",
                actor=actor.audit_name,
                target=vulnerability,
                source_ip=source_ip,
                data={"reason": reason, "expires_at": expires_at.isoformat() if expires_at else None},
            )
        expired = expires_at is not None and expires_at <= now
        return AllowlistView(vulnerability, reason, expires_at, expired, actor.audit_name or "", now)

    async def disallow(self, actor: Principal, namespace: str, vulnerability: str, *, source_ip: str = "") -> None:
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            gone = await conn.execute(
                delete(VulnAllowlistEntry).where(
                    VulnAllowlistEntry.namespace == namespace, VulnAllowlistEntry.vulnerability == vulnerability
                )
            )
            if gone.rowcount == 0:
                raise NotFound("allowlist", "no allowlist entry for this vulnerability", {"id": vulnerability[:255]})
            await record_audit(
                conn,
                namespace,
                "vulnerability.allowlist.remove",
                actor=actor.audit_name,
                target=vulnerability,
                source_ip=source_ip,
            )

    # -- VEX --------------------------------------------------------------------------------------------------

    async def list_vex(self, actor: Principal, namespace: str) -> list[VexDocumentView]:
        async with self.db.read(consistent=True) as conn:
            await self._owner(conn, actor, namespace)
            rows = await conn.execute(
                select(VulnVex.document, func.count(), func.min(VulnVex.created_by), func.min(VulnVex.created_at))
                .where(VulnVex.namespace == namespace)
                .group_by(VulnVex.document)
                .order_by(VulnVex.document)
            )
            return [VexDocumentView(d, int(n), by, at) for d, n, by, at in rows]

    async def add_vex(self, actor: Principal, namespace: str, body: bytes, *, source_ip: str = "") -> VexDocumentView:
        """Store an OpenVEX document's statements (replacing a document with the same ``@id``)."""
        if len(body) > MAX_VEX_BYTES:
            raise Invalid("vex", f"an OpenVEX document is at most {MAX_VEX_BYTES} bytes")
        try:
            doc = loads_limited(body)
        except (ValueError, RecursionError) as exc:
            raise Invalid("vex", "the body is not JSON") from exc
        document, statements = parse_openvex(doc)
        if not document:
            raise Invalid("vex", "an OpenVEX document needs an @id")
        now = utcnow()
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            await conn.execute(delete(VulnVex).where(VulnVex.namespace == namespace, VulnVex.document == document))
            documents = (
                await conn.execute(
                    select(func.count(func.distinct(VulnVex.document))).where(VulnVex.namespace == namespace)
                )
            ).scalar_one()
            if documents >= MAX_DOCUMENTS:
                raise Invalid("vex", f"at most {MAX_DOCUMENTS} VEX documents per namespace")
            if statements:
                await conn.execute(
                    insert(VulnVex),
                    [
                        {
                            "namespace": namespace,
                            "document": document[:512],
                            "vulnerability": s.vulnerability,
                            "product": s.product,
                            "subcomponent": s.subcomponent,
                            "status": s.status,
                            "justification": s.justification,
                            "statement_at": s.timestamp,
                            "created_by": actor.audit_name or "",
                            "created_at": now,
                        }
                        for s in statements
                    ],
                )
            await record_audit(
                conn,
                namespace,
                "vulnerability.vex.add",
                actor=actor.audit_name,
                target=document[:512],
                source_ip=source_ip,
                data={
                    "statements": len(statements),
                    "suppressing": sorted(
                        {s.vulnerability for s in statements if s.status in ("not_affected", "fixed")}
                    )[:50],
                },
            )
        return VexDocumentView(document[:512], len(statements), actor.audit_name or "", now)

    async def remove_vex(self, actor: Principal, namespace: str, document: str, *, source_ip: str = "") -> None:
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            gone = await conn.execute(
                delete(VulnVex).where(VulnVex.namespace == namespace, VulnVex.document == document)
            )
            if gone.rowcount == 0:
                raise NotFound("vex", "no VEX document with this id", {"id": document[:512]})
            await record_audit(
                conn,
                namespace,
                "vulnerability.vex.remove",
                actor=actor.audit_name,
                target=document,
                source_ip=source_ip,
            )
