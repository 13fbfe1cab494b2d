"""Robot accounts: machine identities of an organization, named ``org+shortname``, with explicit grants on
repositories of that organization's namespace only (``repository_permissions`` rows with ``account_id``).

A robot's secret is random (256 bits), shown once at creation or regeneration, and stored as its SHA-256.
Only owners of the organization (and site administrators) manage robots. A robot may expire (``expires_at``; its
owners can move or clear the date). Disabling, deleting or expiring a robot, or regenerating its secret, takes
effect at the next authentication; regenerating the secret also ends the robot's
refresh and API tokens (registry tokens already issued run out within their short lifetime).

Organization access tokens are robots too (``accounts.org_tokens``: one permission path), hidden from this
service: they are listed and managed as tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.common import name_taken, paged, require_org_owner
from dockyard.accounts.grants import check_org_repositories, grant_org_repositories
from dockyard.accounts.names import ROBOT_SEPARATOR, robot_name, split_robot_name, validate_text
from dockyard.accounts.snapshots import RepositoryGrant, RobotInfo
from dockyard.auth.refresh import end_sessions
from dockyard.auth.secrets import ROBOT_PREFIX, hash_robot_secret, new_token
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Account, OrgAccessToken, Repository, RepositoryPermission
from dockyard.models.accounts import ROBOT
from dockyard.models.base import utcnow
from dockyard.settings import Settings


class _Keep(Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP  # ``update_robot(expires_at=KEEP)``: the expiry stays as it is
ExpiryChange = datetime | None | Literal[_Keep.KEEP]  # a new expiry, None for never, or KEEP


def check_expiry(expires_at: datetime | None) -> datetime | None:
    """An expiry date must be a moment (with its time zone) in the future; None is "never"."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise Invalid("robot", "expires_at needs a time zone (e.g. 2027-01-31T00:00:00Z)")
    if expires_at <= utcnow():
        raise Invalid("robot", "expires_at must be in the future", {"expires_at": expires_at.isoformat()})
    return expires_at


class RobotService:
    """Raises NotFound (no such organization or robot), Denied (not an owner), Conflict (name taken) and
    Invalid (bad name, a grant outside the organization's namespace, a bad level)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def create_robot(
        self,
        org: str,
        shortname: str,
        *,
        description: str = "",
        permissions: Mapping[str, Level] | None = None,
        expires_at: datetime | None = None,
        actor: Principal,
        source_ip: str = "",
    ) -> tuple[RobotInfo, str]:
        """Create ``org+shortname`` with the given grants (creating missing repositories of the organization),
        working until ``expires_at`` (None: until deleted or disabled). Returns the robot and its secret, which is
        not stored and cannot be shown again."""
        name = robot_name(org, shortname)
        description = validate_text(description, "description")
        expires_at = check_expiry(expires_at)
        levels = check_org_repositories(org, permissions or {})
        secret = new_token(ROBOT_PREFIX)
        try:
            async with self._db.write() as conn:
                org_row = await require_org_owner(conn, actor, org)
                if await name_taken(conn, name):
                    raise Conflict("robot", "a robot of this name exists", {"name": name})
                robot_id = (
                    await conn.execute(
                        insert(Account)
                        .values(
                            name=name,
                            kind=ROBOT,
                            password_hash=hash_robot_secret(secret),
                            password_changed_at=utcnow(),
                            owner_id=org_row.id,
                            description=description,
                            expires_at=expires_at,
                            created_at=utcnow(),
                        )
                        .returning(Account.id)
                    )
                ).scalar_one()
                await grant_org_repositories(conn, org, robot_id, levels, self._settings, actor, source_ip=source_ip)
                await record_audit(
                    conn,
                    org,
                    "robot.create",
                    actor=actor.audit_name,
                    target=name,
                    source_ip=source_ip,
                    data={
                        "permissions": {repo: level.label for repo, level in sorted(levels.items())},
                        "expires_at": None if expires_at is None else expires_at.isoformat(),
                    },
                )
                info = await _robot_info(conn, org, await _require_robot(conn, org_row.id, org, shortname))
        except IntegrityError as exc:  # a concurrent creation (PostgreSQL)
            raise Conflict("robot", "a robot of this name exists", {"name": name}) from exc
        return info, secret

    async def list_robots(self, org: str, page: PageRequest, *, actor: Principal) -> Page[RobotInfo]:
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_owner(conn, actor, org)
            query = (
                select(Account)
                .where(Account.owner_id == org_row.id, Account.kind == ROBOT, _NOT_A_TOKEN)
                .order_by(Account.name)
            )
            listed = await paged(conn, query, page, lambda row: row)
            items = await _robot_infos(conn, org, listed.items)
        return Page(items=items, count=listed.count, request=page)

    async def get_robot(self, org: str, shortname: str, *, actor: Principal) -> RobotInfo:
        """``shortname`` may also be given as ``org+shortname``."""
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_owner(conn, actor, org)
            return await _robot_info(conn, org, await _require_robot(conn, org_row.id, org, shortname))

    async def update_robot(
        self,
        org: str,
        shortname: str,
        *,
        description: str | None = None,
        disabled: bool | None = None,
        permissions: Mapping[str, Level] | None = None,
        expires_at: ExpiryChange = KEEP,
        actor: Principal,
        source_ip: str = "",
    ) -> RobotInfo:
        """Change the description, disable or enable, or replace all grants (None: unchanged); move the expiry
        (``expires_at``: a future moment, or None for never; ``KEEP``: unchanged)."""
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = validate_text(description, "description")
        if disabled is not None:
            values["disabled"] = bool(disabled)
        if expires_at is not KEEP:
            values["expires_at"] = check_expiry(expires_at)
        levels = check_org_repositories(org, permissions) if permissions is not None else None
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            robot = await _require_robot(conn, org_row.id, org, shortname)
            if values:
                await conn.execute(update(Account).where(Account.id == robot.id).values(**values))
            if levels is not None:
                await conn.execute(delete(RepositoryPermission).where(RepositoryPermission.account_id == robot.id))
                await grant_org_repositories(conn, org, robot.id, levels, self._settings, actor, source_ip=source_ip)
            if values or levels is not None:
                data: dict[str, Any] = dict(values)
                if "expires_at" in data and data["expires_at"] is not None:
                    data["expires_at"] = data["expires_at"].isoformat()
                if levels is not None:
                    data["permissions"] = {repo: level.label for repo, level in sorted(levels.items())}
                await record_audit(
                    conn, org, "robot.update", actor=actor.audit_name, target=robot.name, source_ip=source_ip, data=data
                )
            return await _robot_info(conn, org, await _require_robot(conn, org_row.id, org, shortname))

    async def regenerate_secret(self, org: str, shortname: str, *, actor: Principal, source_ip: str = "") -> str:
        """A new secret for the robot (the old one stops working). Returned once, never stored in clear."""
        secret = new_token(ROBOT_PREFIX)
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            robot = await _require_robot(conn, org_row.id, org, shortname)
            await conn.execute(
                update(Account)
                .where(Account.id == robot.id)
                .values(password_hash=hash_robot_secret(secret), password_changed_at=utcnow())
            )
            await end_sessions(conn, robot.id)  # its refresh and API tokens go with the old secret
            await record_audit(
                conn, org, "robot.secret.regenerate", actor=actor.audit_name, target=robot.name, source_ip=source_ip
            )
        return secret

    async def delete_robot(self, org: str, shortname: str, *, actor: Principal, source_ip: str = "") -> None:
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            robot = await _require_robot(conn, org_row.id, org, shortname)
            await conn.execute(delete(Account).where(Account.id == robot.id))
            await record_audit(
                conn, org, "robot.delete", actor=actor.audit_name, target=robot.name, source_ip=source_ip
            )


# The robots behind organization access tokens are the tokens' business (``accounts.org_tokens``), not robots'.
_NOT_A_TOKEN = ~Account.id.in_(select(OrgAccessToken.robot_id))


async def _require_robot(conn: AsyncConnection, org_id: int, org: str, shortname: str) -> Row[Any]:
    short = split_robot_name(org, shortname)
    row = (
        await conn.execute(
            select(Account).where(
                Account.name == f"{org}{ROBOT_SEPARATOR}{short}",
                Account.kind == ROBOT,
                Account.owner_id == org_id,
                _NOT_A_TOKEN,
            )
        )
    ).first()
    if row is None:
        raise NotFound("robot", "robot not found", {"org": org, "robot": short[:100]})
    return row


async def _robot_info(conn: AsyncConnection, org: str, row: Any) -> RobotInfo:
    return (await _robot_infos(conn, org, [row]))[0]


async def _robot_infos(conn: AsyncConnection, org: str, rows: Sequence[Any]) -> list[RobotInfo]:
    """Robots with their grants (one query for all of them)."""
    grants: dict[int, list[RepositoryGrant]] = {row.id: [] for row in rows}
    if grants:
        for account_id, name, level in await conn.execute(
            select(RepositoryPermission.account_id, Repository.name, RepositoryPermission.permission)
            .join(RepositoryPermission, RepositoryPermission.repository_id == Repository.id)
            .where(RepositoryPermission.account_id.in_(list(grants)))
            .order_by(Repository.name)
        ):
            if account_id is not None:
                grants[account_id].append(RepositoryGrant(repository=name, level=Level.parse(level)))
    return [
        RobotInfo(
            id=row.id,
            name=row.name,
            org=org,
            shortname=row.name.partition(ROBOT_SEPARATOR)[2],
            description=row.description,
            disabled=bool(row.disabled),
            created_at=row.created_at,
            permissions=tuple(grants[row.id]),
            expires_at=row.expires_at,
        )
        for row in rows
    ]
