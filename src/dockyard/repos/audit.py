"""Reading the audit log (``GET /v2/auditlogs/{namespace}``): a namespace's entries, newest first, for its
owners (and site administrators) only, in Docker Hub's shape; and every namespace's entries at once, for site
administrators only (the web hub's site-wide log)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.authorizer import NamespaceResource, Permission, require
from dockyard.authz.principal import Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.errors import Denied
from dockyard.events.audit import ACTION_DESCRIPTIONS
from dockyard.models import AuditEntry
from dockyard.registry.context import RegistryContext
from dockyard.repos.access import LIKE_ESCAPE, like_prefix


@dataclass(frozen=True, slots=True)
class AuditLogEntry:
    """``account`` is the namespace, ``name`` the target (``ns/repo``, ``ns/repo:tag``, a token label, …)."""

    account: str
    action: str
    name: str
    actor: str
    data: dict[str, Any]
    timestamp: datetime
    action_description: str
    source_ip: str


def _data(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _target_is(name: str) -> ColumnElement[bool]:
    """The entry is about ``name``: exactly, or one of its tags or manifests (``name:tag``, ``name@digest``)."""
    return or_(
        AuditEntry.target == name,
        AuditEntry.target.like(like_prefix(f"{name}:"), escape=LIKE_ESCAPE),
        AuditEntry.target.like(like_prefix(f"{name}@"), escape=LIKE_ESCAPE),
    )


class AuditLogService:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def list(
        self,
        actor: Principal,
        namespace: str,
        *,
        action: str | None = None,
        name: str | None = None,
        actor_name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page: PageRequest,
    ) -> Page[AuditLogEntry]:
        """Entries of ``namespace`` matching the filters (``since`` inclusive, ``until`` exclusive), newest first.

        Only the namespace's owners (the user, organization owners, administrators) may read them: anyone else
        gets ``Denied("account")`` (namespaces are public), any caller ``NotFound("account")`` for an unknown
        namespace (``authz.authorizer``).
        """
        async with self.ctx.db.read(consistent=True) as conn:
            await require(
                conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(namespace), doing="read its audit log"
            )
            where = [AuditEntry.namespace == namespace, *_filters(action, name, actor_name, since, until)]
            return await _entries(conn, where, page)

    async def list_everything(
        self,
        actor: Principal,
        *,
        namespace: str | None = None,
        action: str | None = None,
        actor_name: str | None = None,
        page: PageRequest,
    ) -> Page[AuditLogEntry]:
        """Every namespace's entries (or one's, by ``namespace``), newest first; site administrators only
        (``Denied("account")`` for anyone else). Archived entries stay hidden, as in ``list``."""
        if not actor.superuser:
            raise Denied("account", "only site administrators read every namespace's audit log")
        where = _filters(action, None, actor_name, None, None)
        if namespace:
            where.append(AuditEntry.namespace == namespace)
        async with self.ctx.db.read(consistent=True) as conn:
            return await _entries(conn, where, page)


def _filters(
    action: str | None, name: str | None, actor_name: str | None, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    # Entries of a deleted account of the same name are archived: never shown under the name again.
    where: list[ColumnElement[bool]] = [AuditEntry.archived_at.is_(None)]
    if action:
        where.append(AuditEntry.action == action)
    if name:
        where.append(_target_is(name))
    if actor_name:
        where.append(AuditEntry.actor == actor_name)
    if since is not None:
        where.append(AuditEntry.created_at >= since)
    if until is not None:
        where.append(AuditEntry.created_at < until)
    return where


async def _entries(conn: AsyncConnection, where: list[ColumnElement[bool]], page: PageRequest) -> Page[AuditLogEntry]:
    total = int((await conn.execute(select(func.count()).select_from(AuditEntry).where(*where))).scalar_one())
    rows = (
        await conn.execute(
            select(AuditEntry)
            .where(*where)
            .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
            .limit(page.page_size)
            .offset(page.offset)
        )
    ).all()
    items = [
        AuditLogEntry(
            account=row.namespace,
            action=row.action,
            name=row.target,
            actor=row.actor,
            data=_data(row.data),
            timestamp=row.created_at,
            action_description=ACTION_DESCRIPTIONS.get(row.action, row.action),
            source_ip=row.source_ip,
        )
        for row in rows
    ]
    return Page(items, total, page)
