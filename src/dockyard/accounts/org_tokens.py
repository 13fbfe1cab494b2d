"""Organization access tokens (Docker Hub's OATs): secrets an organization's owners make for automation, scoped to
repositories of the organization and to pull or push, with a label, an optional expiry, last use and an on/off
switch.

One permission path: an OAT is the secret of a hidden robot account of its organization (``org+oat_<hex>``), and
its resources are that robot's grants in ``repository_permissions`` — what ``authz.permissions`` already reads
for robots. ``docker login -u <org> -p dy_oat_…`` and ``POST /api/v2/auth/token`` with the organization's name
authenticate as that robot (``auth.credentials``); the robot never appears among the organization's robots, and
is deleted with its token. The secret is shown once; only its SHA-256 is stored. Every change is audited in the
organization's log (``access_token.create`` / ``update`` / ``delete``, as Docker Hub names them).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.access_tokens import validate_expiry
from dockyard.accounts.common import require_org_owner
from dockyard.accounts.grants import check_org_repositories, grant_org_repositories
from dockyard.accounts.names import robot_name, validate_text
from dockyard.auth.refresh import end_sessions
from dockyard.auth.secrets import OAT_PREFIX, fingerprint, new_token
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Account, OrgAccessToken, RepositoryPermission
from dockyard.models.accounts import ROBOT
from dockyard.models.base import utcnow
from dockyard.settings import Settings

TYPE_REPO = "TYPE_REPO"
PUBLIC_REPOSITORIES = "*/*/public"  # Docker Hub's path for "public repositories": pull, which anyone may
REPO_PULL = "repo-pull"
REPO_PUSH = "repo-push"
MAX_LABEL = 100


@dataclass(frozen=True, slots=True)
class Resource:
    """Docker Hub's ``orgAccessTokenResource``."""

    type: str
    path: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OrgTokenInfo:
    id: str
    org: str
    label: str
    description: str
    created_by: str
    is_active: bool
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    resources: tuple[Resource, ...]


def resource_levels(org: str, resources: Sequence[Resource]) -> dict[str, Level]:
    """Docker Hub's resources → the grants of the token's robot: ``repo-pull`` read, ``repo-push`` write, on
    repositories of the organization. Invalid for another type, scope or namespace."""
    levels: dict[str, Level] = {}
    for resource in resources:
        if resource.type != TYPE_REPO:
            raise Invalid(
                "token",
                "Dockyard's organization access tokens reach repositories only (TYPE_REPO)",
                {"type": resource.type[:50]},
            )
        scopes = set(resource.scopes)
        if not scopes or not scopes <= {REPO_PULL, REPO_PUSH}:
            raise Invalid("token", "scopes are repo-pull and repo-push", {"scopes": sorted(scopes)[:10]})
        if resource.path == PUBLIC_REPOSITORIES:
            if REPO_PUSH in scopes:
                raise Invalid("token", "public repositories of others can only be pulled", {"path": resource.path})
            continue
        level = Level.WRITE if REPO_PUSH in scopes else Level.READ
        levels[resource.path] = max(levels.get(resource.path, Level.NONE), level)
    return check_org_repositories(org, levels)


class OrgTokenService:
    """Organization access tokens. Raises NotFound (no such organization or token), Denied (not an owner) and
    Invalid (a bad label, resource or expiry)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def create(
        self,
        org: str,
        *,
        label: str,
        description: str = "",
        resources: Sequence[Resource] = (),
        expires_at: datetime | None = None,
        actor: Principal,
        source_ip: str = "",
    ) -> tuple[OrgTokenInfo, str]:
        """Make a token; returns it with its secret, which is not stored and cannot be shown again."""
        label = _label(label)
        description = validate_text(description, "description")
        levels = resource_levels(org, resources)
        expires_at = validate_expiry(expires_at, utcnow())  # the rule of personal access tokens
        token_id = str(uuid.uuid4())
        secret = new_token(OAT_PREFIX)
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            robot_id = (
                await conn.execute(
                    insert(Account)
                    .values(
                        name=robot_name(org, "oat_" + token_id.replace("-", "")),
                        kind=ROBOT,
                        owner_id=org_row.id,
                        description=f"organization access token {token_id}",
                        created_at=utcnow(),
                    )
                    .returning(Account.id)
                )
            ).scalar_one()
            await grant_org_repositories(conn, org, robot_id, levels, self._settings, actor, source_ip=source_ip)
            await conn.execute(
                insert(OrgAccessToken).values(
                    id=token_id,
                    org_id=org_row.id,
                    robot_id=robot_id,
                    label=label,
                    description=description,
                    token_hash=fingerprint(secret),
                    resources=_dump(resources),
                    created_by=actor.audit_name,
                    is_active=True,
                    created_at=utcnow(),
                    expires_at=expires_at,
                )
            )
            await record_audit(
                conn,
                org,
                "access_token.create",
                actor=actor.audit_name,
                target=label,
                source_ip=source_ip,
                data={"type": "organization", "id": token_id, "resources": json.loads(_dump(resources))},
            )
            return _info(org, await _require(conn, org_row.id, token_id)), secret

    async def list(self, org: str, page: PageRequest, *, actor: Principal) -> Page[OrgTokenInfo]:
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_owner(conn, actor, org)
            where = OrgAccessToken.org_id == org_row.id
            count = (await conn.execute(select(func.count()).where(where))).scalar_one()
            rows = (
                await conn.execute(
                    select(OrgAccessToken)
                    .where(where)
                    .order_by(OrgAccessToken.created_at.desc(), OrgAccessToken.id)
                    .limit(page.page_size)
                    .offset(page.offset)
                )
            ).all()
            return Page(items=[_info(org, row) for row in rows], count=int(count), request=page)

    async def get(self, org: str, token_id: str, *, actor: Principal) -> OrgTokenInfo:
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_owner(conn, actor, org)
            return _info(org, await _require(conn, org_row.id, token_id))

    async def update(
        self,
        org: str,
        token_id: str,
        *,
        label: str | None = None,
        description: str | None = None,
        resources: Sequence[Resource] | None = None,
        is_active: bool | None = None,
        actor: Principal,
        source_ip: str = "",
    ) -> OrgTokenInfo:
        """Change the label, description or resources (replacing them all), or switch the token off or on."""
        values: dict[str, Any] = {}
        if label is not None:
            values["label"] = _label(label)
        if description is not None:
            values["description"] = validate_text(description, "description")
        if is_active is not None:
            values["is_active"] = bool(is_active)
        levels = resource_levels(org, resources) if resources is not None else None
        if resources is not None:
            values["resources"] = _dump(resources)
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            row = await _require(conn, org_row.id, token_id)
            if values:
                await conn.execute(update(OrgAccessToken).where(OrgAccessToken.id == row.id).values(**values))
            if levels is not None:
                await conn.execute(delete(RepositoryPermission).where(RepositoryPermission.account_id == row.robot_id))
                await grant_org_repositories(
                    conn, org, row.robot_id, levels, self._settings, actor, source_ip=source_ip
                )
            if values.get("is_active") is False:
                await end_sessions(conn, row.robot_id)  # its API and refresh tokens go with it
            if values:
                data = {key: json.loads(value) if key == "resources" else value for key, value in values.items()}
                await record_audit(
                    conn,
                    org,
                    "access_token.update",
                    actor=actor.audit_name,
                    target=values.get("label", row.label),
                    source_ip=source_ip,
                    data={"type": "organization", "id": row.id, **data},
                )
            return _info(org, await _require(conn, org_row.id, token_id))

    async def delete(self, org: str, token_id: str, *, actor: Principal, source_ip: str = "") -> None:
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            row = await _require(conn, org_row.id, token_id)
            # The robot's deletion cascades to its grants, its sessions and the token row.
            await conn.execute(delete(Account).where(Account.id == row.robot_id))
            await record_audit(
                conn,
                org,
                "access_token.delete",
                actor=actor.audit_name,
                target=row.label,
                source_ip=source_ip,
                data={"type": "organization", "id": row.id},
            )


def _label(label: str) -> str:
    label = validate_text(label, "label")
    if not label or len(label) > MAX_LABEL:
        raise Invalid("token", f"the label is 1 to {MAX_LABEL} characters")
    return label


def _dump(resources: Sequence[Resource]) -> str:
    return json.dumps(
        [{"type": r.type, "path": r.path, "scopes": list(r.scopes)} for r in resources], separators=(",", ":")
    )


async def _require(conn: AsyncConnection, org_id: int, token_id: str) -> Row[Any]:
    row = (
        await conn.execute(
            select(OrgAccessToken).where(OrgAccessToken.id == token_id[:36], OrgAccessToken.org_id == org_id)
        )
    ).first()
    if row is None:
        raise NotFound("token", "access token not found", {"id": token_id[:100]})
    return row


def _info(org: str, row: Any) -> OrgTokenInfo:
    return OrgTokenInfo(
        id=row.id,
        org=org,
        label=row.label,
        description=row.description,
        created_by=row.created_by,
        is_active=bool(row.is_active),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        resources=tuple(
            Resource(type=item["type"], path=item["path"], scopes=tuple(item["scopes"]))
            for item in json.loads(row.resources)
        ),
    )
