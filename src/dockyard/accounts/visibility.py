"""The CLI's door to repository visibility (``dockyard repo set-visibility``): a repository named by its registry
path, changed by its administrators through the repository service (``registry.repositories.update_repository``,
the same change the Hub API's repository PATCH makes: ``updated_at`` moves, ``repo.change_privacy`` is audited
with ``{"is_private"}``)."""

from __future__ import annotations

from dockyard.accounts.common import require_repository_admin
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.registry.repositories import update_repository


async def set_visibility(
    db: Database, repository: str, private: bool, *, actor: Principal, source_ip: str = ""
) -> bool:
    """Make ``repository`` private or public. Returns whether it changed. Raises NotFound (no such repository, or
    one the actor may not see) and Denied (the actor may see it but does not hold admin on it)."""
    async with db.write() as conn:
        repo = await require_repository_admin(conn, actor, repository)
        return await update_repository(
            conn, repo.id, actor=actor.audit_name or None, is_private=private, source_ip=source_ip
        )
