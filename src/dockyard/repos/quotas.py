"""Namespace quotas as the Hub API and the CLI see them: a namespace's members read its usage and limits, site
administrators set limits and list every namespace's usage. The accounting itself is ``registry.quotas``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dockyard.authz.authorizer import NamespaceResource, Permission, require
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.errors import Denied
from dockyard.events.audit import record_audit
from dockyard.models import NamespaceUsage, Repository
from dockyard.registry import quotas
from dockyard.registry.quotas import Usage

UNSET: Any = quotas._UNSET


def _site_admin(actor: Principal, doing: str) -> None:
    if not actor.superuser:
        raise Denied("quota", f"only site administrators may {doing}")


class QuotaService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def show(self, actor: Principal, namespace: str) -> Usage:
        """The namespace's usage and limits; its members (and site administrators)."""
        async with self.db.read(consistent=True) as conn:
            if not actor.superuser:
                await require(
                    conn, actor, Permission.NAMESPACE_MEMBER, NamespaceResource(namespace), doing="see its quota"
                )
            return await quotas.usage(conn, namespace)

    async def set(
        self,
        actor: Principal,
        namespace: str,
        *,
        storage_limit: int | None = UNSET,
        repository_limit: int | None = UNSET,
        soft_percent: int | None = None,
        source_ip: str = "",
    ) -> Usage:
        """Set limits (None: unlimited; left out: unchanged); site administrators. Audited ``quota.update``."""
        _site_admin(actor, "set quotas")
        async with self.db.write() as conn:
            if actor.kind != "open":  # an unknown namespace is a 404, as everywhere
                await require(conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(namespace), doing="set quotas")
            result = await quotas.set_limits(
                conn,
                namespace,
                storage_limit=storage_limit,
                repository_limit=repository_limit,
                soft_percent=soft_percent,
            )
            await record_audit(
                conn,
                namespace,
                "quota.update",
                actor=actor.audit_name or None,
                target=namespace,
                source_ip=source_ip,
                data={
                    "storage_limit": result.storage_limit,
                    "repository_limit": result.repository_limit,
                    "soft_percent": result.soft_percent,
                },
            )
        return result

    async def list_all(self, actor: Principal) -> list[Usage]:
        """Every namespace that has repositories or limits, by name; site administrators."""
        _site_admin(actor, "list every namespace's quota")
        async with self.db.read(consistent=True) as conn:
            names = set((await conn.execute(select(NamespaceUsage.namespace))).scalars())
            names |= set((await conn.execute(select(Repository.namespace).distinct())).scalars())
            found = await quotas.usages(conn, names)
        return [found[name] for name in sorted(found)]

    async def recount(self, namespace: str | None = None) -> int:
        """Recompute usage from the links (the operator's ``dockyard quota recount``)."""
        return await self.db.run_unit(lambda conn: quotas.recount_sync(conn, namespace))
