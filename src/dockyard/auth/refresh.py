"""Refresh tokens (``offline_token``): issued, stored, redeemed, rotated and revoked — and ``end_sessions``, which
ends every refresh and API token of an account.

A refresh token is a signed JWT (``TokenService.issue_refresh``) whose ``jti`` is stored, as its SHA-256, in
``refresh_tokens`` with the family it belongs to. Redeeming one checks the signature, then the row (known, not
revoked, not rotated, not expired), then the live account (``Authenticator.principal_for_token``: not disabled,
and still on the credential generation the token was issued under). A token without a row is refused.

Rotation (``refresh_token_rotation``, off by default): a refresh grant issues a new token of the same family and
marks the one presented rotated; presenting a rotated token again revokes the whole family (OAuth 2.1's reuse
detection), as does losing a race against another use of the same token. It is off by default because Docker's
daemon and containers/image never keep the refresh token a refresh grant returns: they present the one
``docker login`` stored, every time, and would be signed out at their second use.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.credentials import Authenticator
from dockyard.auth.tokens import IssuedToken, TokenService
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.errors import Unauthorized
from dockyard.events.audit import record_audit
from dockyard.models import Account, RefreshToken, WebSession
from dockyard.models.base import utcnow
from dockyard.settings import Settings


def _row_id(jti: str) -> str:
    return hashlib.sha256(jti.encode()).hexdigest()


def _refused(reason: str) -> Unauthorized:
    return Unauthorized("token", f"invalid refresh token: {reason}")


async def end_sessions(conn: AsyncConnection, account_id: int) -> None:
    """In the caller's transaction: move the account's credential generation on (every refresh and API token
    issued before is refused from now on) and revoke its stored refresh tokens and its web sessions."""
    await conn.execute(
        update(Account).where(Account.id == account_id).values(credential_generation=Account.credential_generation + 1)
    )
    await conn.execute(
        update(RefreshToken)
        .where(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await conn.execute(
        update(WebSession)
        .where(WebSession.account_id == account_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


class RefreshTokens:
    """Raises Unauthorized (bad, unknown, revoked, reused or expired token; the account or access token behind it
    is no longer valid). Safe under concurrent redemption of one token: one wins, the others count as reuse."""

    def __init__(self, db: Database, tokens: TokenService, authenticator: Authenticator, settings: Settings) -> None:
        self._db = db
        self._tokens = tokens
        self._authenticator = authenticator
        self._settings = settings

    async def issue(self, principal: Principal, service: str, client_id: str) -> str:
        """A new refresh token (of a new family) for an authenticated principal."""
        assert principal.account_id is not None
        issued = await self._tokens.issue_refresh(principal, service, client_id)
        async with self._db.write() as conn:
            await _store(conn, issued, principal.account_id, client_id, uuid.uuid4().hex)
        return issued.token

    async def redeem(self, token: str, service: str) -> tuple[Principal, str]:
        """The live principal behind ``token`` and the refresh token the client should keep: ``token`` itself, or
        its successor when rotation is on."""
        verified = await self._tokens.verify(token, audience=service, use="refresh")
        row_id = _row_id(verified.jti)
        async with self._db.read(consistent=True) as conn:
            row = (await conn.execute(select(RefreshToken).where(RefreshToken.id == row_id))).first()
        if row is None or row.account_id != verified.account_id:
            raise _refused("unknown")
        if row.revoked_at is not None:
            raise _refused("revoked")
        if row.rotated_at is not None:
            await self._revoke_family(row.family_id, row.account_id)
            raise _refused("already used; every token of its family is revoked")
        live = await self._authenticator.principal_for_token(verified)
        if live is None:
            raise Unauthorized("token", "the account or token behind this refresh token is no longer valid")
        if not self._settings.refresh_token_rotation:
            return live, token
        successor = await self._tokens.issue_refresh(live, service, row.client_id)
        async with self._db.write() as conn:
            claimed = await conn.execute(
                update(RefreshToken)
                .where(RefreshToken.id == row_id, RefreshToken.rotated_at.is_(None), RefreshToken.revoked_at.is_(None))
                .values(rotated_at=utcnow())
            )
            if claimed.rowcount == 1:
                await _store(conn, successor, row.account_id, row.client_id, row.family_id)
        if claimed.rowcount != 1:  # used concurrently, or revoked meanwhile
            await self._revoke_family(row.family_id, row.account_id)
            raise _refused("already used; every token of its family is revoked")
        return live, successor.token

    async def _revoke_family(self, family_id: str, account_id: int) -> None:
        async with self._db.write() as conn:
            revoked = await conn.execute(
                update(RefreshToken)
                .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            name = (await conn.execute(select(Account.name).where(Account.id == account_id))).scalar_one_or_none()
            if revoked.rowcount and name is not None:
                await record_audit(
                    conn,
                    name.split("+", 1)[0],
                    "refresh_token.reuse",
                    actor=name,
                    target=name,
                    data={"family": family_id, "revoked": revoked.rowcount},
                )


async def _store(conn: AsyncConnection, issued: IssuedToken, account_id: int, client_id: str, family_id: str) -> None:
    now = utcnow()
    # Expired rows of the account go as new ones come: the table holds live tokens and recent history only.
    await conn.execute(delete(RefreshToken).where(RefreshToken.account_id == account_id, RefreshToken.expires_at < now))
    await conn.execute(
        insert(RefreshToken).values(
            id=_row_id(issued.jti),
            family_id=family_id,
            account_id=account_id,
            client_id=client_id[:100],
            issued_at=issued.issued_at,
            expires_at=issued.issued_at + timedelta(seconds=issued.expires_in),
        )
    )
