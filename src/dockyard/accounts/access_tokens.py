"""Personal access tokens: creation (the secret is returned once; only its SHA-256 is stored), listing,
revocation / re-activation, deletion.

Tokens are managed with the account's own credentials: a caller that authenticated *with* an access token may
not create, list or change tokens (a leaked token must not mint or reveal others), and robots have none. Site
administrators (and the CLI, as the open principal) may manage any user's tokens.
"""

from __future__ import annotations

import json
import uuid as uuid_module
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.common import paged, require_interactive, require_user
from dockyard.accounts.snapshots import TokenInfo
from dockyard.auth.secrets import PAT_PREFIX, fingerprint, new_token
from dockyard.authz.principal import TOKEN_SCOPES, Principal
from dockyard.core.names import validate_name
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Denied, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import AccessToken, Account
from dockyard.models.base import utcnow
from dockyard.settings import Settings

CLIENT_ID = "dockyard"
GENERATED_BY = "manual"
MAX_LABEL_LENGTH = 100
MAX_TOKEN_REPOSITORIES = 100
PREFIX_LENGTH = 12  # of the secret, kept to recognise a token in lists (5 random characters after "dy_pat_")


def validate_label(label: str) -> str:
    label = label.strip() if isinstance(label, str) else ""
    if not 1 <= len(label) <= MAX_LABEL_LENGTH or any(ord(ch) < 32 for ch in label):
        raise Invalid("token", f"token_label must be 1 to {MAX_LABEL_LENGTH} printable characters")
    return label


def validate_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(scopes, str) or not scopes:
        raise Invalid("scope", "give at least one scope", {"allowed": list(TOKEN_SCOPES)})
    unknown = sorted({scope for scope in scopes if scope not in TOKEN_SCOPES})
    if unknown:
        raise Invalid("scope", "unknown scope", {"scopes": unknown[:10], "allowed": list(TOKEN_SCOPES)})
    return tuple(scope for scope in TOKEN_SCOPES if scope in scopes)  # canonical order, no duplicates


def validate_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise Invalid("token", "expires_at needs a time zone")
    if expires_at <= now:
        raise Invalid("token", "expires_at must be in the future")
    return expires_at.astimezone(UTC)


def validate_repositories(repositories: Sequence[str] | None) -> tuple[str, ...] | None:
    if repositories is None:
        return None
    if isinstance(repositories, str) or not repositories:
        raise Invalid("token", "give at least one repository, or none to cover every repository")
    if len(repositories) > MAX_TOKEN_REPOSITORIES:
        raise Invalid("token", f"a token may name at most {MAX_TOKEN_REPOSITORIES} repositories")
    return tuple(sorted({validate_name(name) for name in repositories}))


class AccessTokenService:
    """Raises NotFound (no such token, or another user's), Denied (a token, robot or anonymous caller; another
    user's tokens without being an administrator) and Invalid (label, scopes, expiry, repositories)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def create(
        self,
        actor: Principal,
        *,
        label: str,
        scopes: Sequence[str],
        expires_at: datetime | None = None,
        repositories: Sequence[str] | None = None,
        username: str | None = None,
        source_ip: str = "",
    ) -> tuple[TokenInfo, str]:
        """Create a token for the acting user (administrators: for ``username``). Returns it with its secret,
        which is not stored and cannot be shown again."""
        owner = self._owner_name(actor, username, "create access tokens")
        now = utcnow()
        label = validate_label(label)
        scope_list = validate_scopes(scopes)
        expires_at = validate_expiry(expires_at, now)
        repo_list = validate_repositories(repositories)
        secret = new_token(PAT_PREFIX)
        token_id = str(uuid_module.uuid4())
        async with self._db.write() as conn:
            user = await require_user(conn, owner)
            await conn.execute(
                insert(AccessToken).values(
                    id=token_id,
                    account_id=user.id,
                    label=label,
                    token_hash=fingerprint(secret),
                    token_prefix=secret[:PREFIX_LENGTH],
                    scopes=" ".join(scope_list),
                    repositories=json.dumps(list(repo_list)) if repo_list is not None else None,
                    created_at=now,
                    expires_at=expires_at,
                    created_ip=source_ip[:64],
                )
            )
            await record_audit(
                conn,
                owner,
                "access_token.create",
                actor=actor.audit_name,
                target=token_id,
                source_ip=source_ip,
                data={"label": label, "scopes": list(scope_list), "expires_at": expires_at},
            )
            info = await _load(conn, token_id)
        return info, secret

    async def list(self, actor: Principal, page: PageRequest, *, username: str | None = None) -> Page[TokenInfo]:
        """The user's tokens, newest first (administrators may name another user)."""
        owner = self._owner_name(actor, username, "list access tokens")
        async with self._db.read(consistent=True) as conn:
            user = await require_user(conn, owner)
            query = (
                select(AccessToken, Account.name.label("username"))
                .join(Account, Account.id == AccessToken.account_id)
                .where(AccessToken.account_id == user.id)
                .order_by(AccessToken.created_at.desc(), AccessToken.id)
            )
            return await paged(conn, query, page, token_info)

    async def get(self, actor: Principal, uuid: str) -> TokenInfo:
        async with self._db.read() as conn:
            row = await self._visible(conn, actor, uuid, "see access tokens")
        return token_info(row)

    async def update(
        self,
        actor: Principal,
        uuid: str,
        *,
        label: str | None = None,
        is_active: bool | None = None,
        source_ip: str = "",
    ) -> TokenInfo:
        """Relabel, revoke (``is_active=False``: it stops authenticating at once) or re-activate a token."""
        values: dict[str, Any] = {}
        if label is not None:
            values["label"] = validate_label(label)
        async with self._db.write() as conn:
            row = await self._visible(conn, actor, uuid, "change access tokens")
            action = "access_token.update"
            if is_active is False and row.revoked_at is None:
                values["revoked_at"] = utcnow()
                action = "access_token.revoke"
            elif is_active is True and row.revoked_at is not None:
                values["revoked_at"] = None
            if values:
                await conn.execute(update(AccessToken).where(AccessToken.id == row.id).values(**values))
                await record_audit(
                    conn,
                    row.username,
                    action,
                    actor=actor.audit_name,
                    target=row.id,
                    source_ip=source_ip,
                    data={"label": values.get("label", row.label), "is_active": values.get("revoked_at") is None},
                )
            return await _load(conn, row.id)

    async def delete(self, actor: Principal, uuid: str, *, source_ip: str = "") -> None:
        async with self._db.write() as conn:
            row = await self._visible(conn, actor, uuid, "delete access tokens")
            await conn.execute(delete(AccessToken).where(AccessToken.id == row.id))
            await record_audit(
                conn,
                row.username,
                "access_token.delete",
                actor=actor.audit_name,
                target=row.id,
                source_ip=source_ip,
                data={"label": row.label},
            )

    @staticmethod
    def _owner_name(actor: Principal, username: str | None, what: str) -> str:
        require_interactive(actor, what)
        if username is None:
            if actor.kind != "user":
                raise Invalid("account", "name the user whose tokens these are")
            return actor.name
        if actor.kind == "user" and username == actor.name:
            return username
        if not actor.superuser:
            raise Denied("token", f"only site administrators may {what} of other users")
        return username

    @staticmethod
    async def _visible(conn: AsyncConnection, actor: Principal, token_id: str, what: str) -> Row[AccessToken, str]:
        """The token with its owner's name, if the actor may manage it; NotFound for another user's token."""
        require_interactive(actor, what)
        row = (
            await conn.execute(
                select(AccessToken, Account.name.label("username"))
                .join(Account, Account.id == AccessToken.account_id)
                .where(AccessToken.id == str(token_id)[:36])
            )
        ).first()
        if row is None or not (actor.superuser or row.account_id == actor.account_id):
            raise NotFound("token", "access token not found", {"uuid": str(token_id)[:36]})
        return row


async def _load(conn: AsyncConnection, token_id: str) -> TokenInfo:
    row = (
        await conn.execute(
            select(AccessToken, Account.name.label("username"))
            .join(Account, Account.id == AccessToken.account_id)
            .where(AccessToken.id == token_id)
        )
    ).one()
    return token_info(row)


def token_info(row: Any) -> TokenInfo:
    repositories = json.loads(row.repositories) if row.repositories else None
    return TokenInfo(
        uuid=row.id,
        username=row.username,
        client_id=CLIENT_ID,
        creator_ip=row.created_ip,
        created_at=row.created_at,
        last_used=row.last_used_at,
        generated_by=GENERATED_BY,
        is_active=row.revoked_at is None,
        token_label=row.label,
        scopes=tuple(row.scopes.split()),
        expires_at=row.expires_at,
        repositories=tuple(repositories) if repositories is not None else None,
        token_prefix=row.token_prefix,
    )
