"""Repository visibility (public / private), changed by the repository's administrators and audited as
``repo.change_privacy``.

TODO(lead): the hub package owns repository metadata; move this next to the repository PATCH when it lands there
(the CLI's ``dockyard repo set-visibility`` calls this function).
"""

from __future__ import annotations

from sqlalchemy import update

from dockyard.accounts.common import require_repository_admin
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.events.audit import record_audit
from dockyard.models import Repository


async def set_visibility(
    db: Database, repository: str, private: bool, *, actor: Principal, source_ip: str = ""
) -> bool:
    """Make ``repository`` private or public. Returns whether it changed. Raises NotFound (no such repository, or
    one the actor may not see) and Denied (the actor may see it but does not hold admin on it)."""
    async with db.write() as conn:
        repo = await require_repository_admin(conn, actor, repository)
        if bool(repo.is_private) == private:
            return False
        await conn.execute(update(Repository).where(Repository.id == repo.id).values(is_private=private))
        await record_audit(
            conn,
            repo.namespace,
            "repo.change_privacy",
            actor=actor.audit_name,
            target=repository,
            source_ip=source_ip,
            data={"private": private},
        )
    return True
