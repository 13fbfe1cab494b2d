"""Collaborators: users granted read / write / admin on one repository of a *user's* namespace
(``repository_permissions`` rows with ``account_id``). Organizations grant through teams instead.

The namespace's owner, site administrators and holders of admin on the repository manage its collaborators.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.common import find_account, require_repository_admin, require_user
from dockyard.accounts.grants import grant, grantable_level, revoke
from dockyard.accounts.snapshots import CollaboratorInfo
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.errors import Invalid
from dockyard.events.audit import record_audit
from dockyard.models import Account, RepositoryPermission
from dockyard.models.accounts import USER
from dockyard.settings import Settings


class CollaboratorService:
    """Raises NotFound (repository invisible to the actor, no such user or grant), Denied (visible but not
    administered by the actor) and Invalid (not a user's repository, the owner themselves, bad level)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def set_collaborator(
        self, repository: str, username: str, level: Level, *, actor: Principal, source_ip: str = ""
    ) -> CollaboratorInfo:
        """Give ``username`` ``level`` on an existing repository of a user's namespace (or change it)."""
        grantable_level(level)
        async with self._db.write() as conn:
            repo = await require_repository_admin(conn, actor, repository)
            await _require_user_namespace(conn, repo.namespace)
            user = await require_user(conn, username)
            if user.name == repo.namespace:
                raise Invalid("permission", "the namespace's owner needs no grant on their own repositories")
            await grant(conn, repo.id, level, account_id=user.id)
            await record_audit(
                conn,
                repo.namespace,
                "repo.permission.change",
                actor=actor.audit_name,
                target=repository,
                source_ip=source_ip,
                data={"collaborator": username, "permission": level.label},
            )
        return CollaboratorInfo(repository=repository, username=username, level=level)

    async def remove_collaborator(
        self, repository: str, username: str, *, actor: Principal, source_ip: str = ""
    ) -> None:
        async with self._db.write() as conn:
            repo = await require_repository_admin(conn, actor, repository)
            user = await require_user(conn, username)
            await revoke(conn, repository, account_id=user.id)
            await record_audit(
                conn,
                repo.namespace,
                "repo.permission.change",
                actor=actor.audit_name,
                target=repository,
                source_ip=source_ip,
                data={"collaborator": username, "permission": None},
            )

    async def list_collaborators(self, repository: str, *, actor: Principal) -> list[CollaboratorInfo]:
        """The users granted a level on the repository, by name (robots' grants are listed with the robots)."""
        async with self._db.read(consistent=True) as conn:
            repo = await require_repository_admin(conn, actor, repository)
            rows = await conn.execute(
                select(Account.name, RepositoryPermission.permission)
                .join(RepositoryPermission, RepositoryPermission.account_id == Account.id)
                .where(RepositoryPermission.repository_id == repo.id, Account.kind == USER)
                .order_by(Account.name)
            )
            return [
                CollaboratorInfo(repository=repository, username=name, level=Level.parse(level)) for name, level in rows
            ]


async def _require_user_namespace(conn: AsyncConnection, namespace: str) -> None:
    if await find_account(conn, namespace, [USER]) is None:
        raise Invalid(
            "permission",
            "collaborators are for repositories of a user's namespace; organizations grant through teams",
            {"namespace": namespace},
        )
