"""The reads ``/v2`` authorization needs, so the HTTP guard and the token endpoint make none themselves: the
actions a principal holds on repositories (``authz.permissions``: levels → pull/push/delete/…) and the reason a
refused push gives. Deciding stays in ``authz``; this service only runs its queries in a unit of work.

Proxy namespaces (``dockyard.proxy``) bend two rules: nobody pushes into them (their repositories are a cache of
an upstream registry), and a repository not cached yet is pullable as the namespace's new repositories will be —
by everyone when the namespace's repositories start public, by the organization's members otherwise — so the
first pull can fetch it."""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.permissions import Level, actions_for, levels_of, load_facts, repository_rows
from dockyard.authz.principal import Principal
from dockyard.core.names import namespace_of
from dockyard.db.engine import Database
from dockyard.models import Account, Proxy
from dockyard.registry.namespaces import NO_NAMESPACE, account_owns
from dockyard.registry.repositories import find_repository

PROXY_CACHE_SECONDS = 2.0
"""How long a process trusts its list of proxy namespaces (a proxy added or removed elsewhere shows this late)."""

PROXY_PUSH_REFUSAL = "this namespace is a cache of an upstream registry: pushes are refused"


async def proxy_visibility(conn: AsyncConnection, default_private: bool) -> dict[str, bool]:
    """Proxy namespace → whether its new repositories start private (the account's setting, else the server's)."""
    rows = await conn.execute(
        select(Proxy.namespace, Account.default_private).outerjoin(Account, Account.name == Proxy.namespace)
    )
    return {ns: default_private if private is None else bool(private) for ns, private in rows}


class RegistryAccess:
    def __init__(self, db: Database, *, default_private: bool = True) -> None:
        self.db = db
        self.default_private = default_private
        self._proxies: tuple[float, dict[str, bool]] = (0.0, {})

    async def proxies(self, conn: AsyncConnection | None = None) -> dict[str, bool]:
        """The proxy namespaces (cached for ``PROXY_CACHE_SECONDS``), each with whether it starts private."""
        expires, known = self._proxies
        if expires > time.monotonic():
            return known
        if conn is None:
            async with self.db.read() as own:
                known = await proxy_visibility(own, self.default_private)
        else:
            known = await proxy_visibility(conn, self.default_private)
        self._proxies = (time.monotonic() + PROXY_CACHE_SECONDS, known)
        return known

    def forget_proxies(self) -> None:
        """Read the proxy namespaces again on the next request (this process changed them)."""
        self._proxies = (0.0, {})

    async def is_proxy(self, name: str) -> bool:
        return namespace_of(name) in await self.proxies()

    async def actions(self, principal: Principal, names: Iterable[str]) -> dict[str, frozenset[str]]:
        """The registry actions ``principal`` holds on each repository name (existing or not)."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        async with self.db.read(consistent=True) as conn:
            proxies = await self.proxies(conn)
            rows = await repository_rows(conn, wanted)
            facts = await load_facts(conn, principal)
            levels = await levels_of(conn, principal, wanted, rows, facts)
        result: dict[str, frozenset[str]] = {}
        for name in wanted:
            level = levels[name]
            namespace = namespace_of(name)
            if namespace in proxies:
                if name not in rows and (not proxies[namespace] or namespace in facts.member_orgs):
                    # Not cached yet: pullable as the namespace's new repositories will be, so a pull can fetch it.
                    level = max(level, Level.READ)
                result[name] = actions_for(level) - {"push"}
            else:
                result[name] = actions_for(level)
        return result

    async def push_refusal(self, name: str) -> str | None:
        """Why a push into ``name`` is refused beyond "denied": :data:`NO_NAMESPACE` when it would create the
        repository in a namespace no account owns (accounts are public, so saying so reveals nothing), or that
        the namespace is a proxy's."""
        if await self.is_proxy(name):
            return PROXY_PUSH_REFUSAL
        async with self.db.read() as conn:
            if await find_repository(conn, name) is None and not await account_owns(conn, namespace_of(name)):
                return NO_NAMESPACE
        return None
