"""Each organization's SCIM bearer token: created (or rotated: a new one replaces the old at once) and revoked by
the organization's owners, shown once, stored as its SHA-256; and the authentication of a SCIM request by it.

A SCIM token authenticates nothing but SCIM (``/api/v2/scim/2.0/…``), for its one organization: it is no
``Principal`` and is refused everywhere else. Creations and revocations are audited in the organization's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from dockyard.accounts.common import require_org_owner
from dockyard.auth.secrets import SCIM_PREFIX, fingerprint, new_token
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import NotFound, Unauthorized
from dockyard.events.audit import record_audit
from dockyard.models import Account, ScimToken
from dockyard.models.base import utcnow

_LAST_USED_RESOLUTION = timedelta(minutes=1)  # last use is written at most this often
_MAX_SECRET = 256


@dataclass(frozen=True, slots=True)
class ScimTokenInfo:
    org: str
    token_prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class ScimOrg:
    """The organization a SCIM request acts for (what its bearer token authenticated)."""

    id: int
    name: str


class ScimTokenService:
    """SCIM tokens. Raises NotFound (no organization, or no token to show or revoke), Denied (not an owner of the
    organization) and, from ``authenticate``, Unauthorized."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, org: str, *, actor: Principal, source_ip: str = "") -> tuple[ScimTokenInfo, str]:
        """Make the organization's SCIM token, replacing (and so revoking) any previous one; returns it with its
        secret, which is not stored and cannot be shown again."""
        secret = new_token(SCIM_PREFIX)
        now = utcnow()
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            values = {
                "org_id": org_row.id,
                "token_hash": fingerprint(secret),
                "token_prefix": secret[: len(SCIM_PREFIX) + 4],
                "created_by": actor.audit_name,
                "created_at": now,
                "last_used_at": None,
            }
            if not await insert_ignore(conn, ScimToken, values):
                await conn.execute(update(ScimToken).where(ScimToken.org_id == org_row.id).values(**values))
            await record_audit(conn, org, "scim.token.create", actor=actor.audit_name, target=org, source_ip=source_ip)
        return ScimTokenInfo(org, str(values["token_prefix"]), actor.audit_name, now, None), secret

    async def get(self, org: str, *, actor: Principal) -> ScimTokenInfo:
        """The token's prefix, creator and dates (never the secret); NotFound when the organization has none."""
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_owner(conn, actor, org)
            row = (await conn.execute(select(ScimToken).where(ScimToken.org_id == org_row.id))).first()
        if row is None:
            raise NotFound("token", "the organization has no SCIM token", {"org": org})
        return ScimTokenInfo(org, row.token_prefix, row.created_by, row.created_at, row.last_used_at)

    async def revoke(self, org: str, *, actor: Principal, source_ip: str = "") -> None:
        """Delete the token: SCIM requests with it are refused from now on. NotFound when there is none."""
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            result = await conn.execute(delete(ScimToken).where(ScimToken.org_id == org_row.id))
            if result.rowcount != 1:
                raise NotFound("token", "the organization has no SCIM token", {"org": org})
            await record_audit(conn, org, "scim.token.revoke", actor=actor.audit_name, target=org, source_ip=source_ip)

    async def authenticate(self, secret: str) -> ScimOrg:
        """The organization whose SCIM token ``secret`` is; Unauthorized for anything else (an unknown or revoked
        token, a disabled organization)."""
        if not secret.startswith(SCIM_PREFIX) or len(secret) > _MAX_SECRET or not secret.isprintable():
            raise Unauthorized("token", "a SCIM bearer token of an organization is required")
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(ScimToken.org_id, ScimToken.last_used_at, Account.name, Account.disabled)
                    .join(Account, Account.id == ScimToken.org_id)
                    .where(ScimToken.token_hash == fingerprint(secret))
                )
            ).first()
        if row is None or row.disabled:
            raise Unauthorized("token", "a SCIM bearer token of an organization is required")
        if row.last_used_at is None or utcnow() - row.last_used_at > _LAST_USED_RESOLUTION:
            async with self._db.write() as conn:
                await conn.execute(
                    update(ScimToken).where(ScimToken.org_id == row.org_id).values(last_used_at=utcnow())
                )
        return ScimOrg(row.org_id, row.name)
