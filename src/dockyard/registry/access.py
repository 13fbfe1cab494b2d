"""The reads ``/v2`` authorization needs, so the HTTP guard and the token endpoint make none themselves: the
actions a principal holds on repositories (``authz.permissions``: levels → pull/push/delete/…) and the reason a
refused push gives. Deciding stays in ``authz``; this service only runs its queries in a unit of work."""

from __future__ import annotations

from collections.abc import Iterable

from dockyard.authz.permissions import actions_for, repository_levels
from dockyard.authz.principal import Principal
from dockyard.core.names import namespace_of
from dockyard.db.engine import Database
from dockyard.registry.namespaces import NO_NAMESPACE, account_owns
from dockyard.registry.repositories import find_repository


class RegistryAccess:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def actions(self, principal: Principal, names: Iterable[str]) -> dict[str, frozenset[str]]:
        """The registry actions ``principal`` holds on each repository name (existing or not)."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        async with self.db.read(consistent=True) as conn:
            levels = await repository_levels(conn, principal, wanted)
        return {name: actions_for(levels[name]) for name in wanted}

    async def push_refusal(self, name: str) -> str | None:
        """Why a push into ``name`` is refused beyond "denied": :data:`NO_NAMESPACE` when it would create the
        repository in a namespace no account owns (accounts are public, so saying so reveals nothing)."""
        async with self.db.read() as conn:
            if await find_repository(conn, name) is None and not await account_owns(conn, namespace_of(name)):
                return NO_NAMESPACE
        return None
