"""Who is this? Checks a user name and secret (password, personal access token or robot secret), and turns the
identity inside a verified token back into a live ``Principal`` (the account may have been disabled since, its
password changed or its sessions revoked: see ``principal_for_token``).

Failures say only "incorrect username or password" whatever went wrong, take as long whether or not the account
exists, are counted by ``LoginThrottle``, and are written to the audit log of the account they name.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import Row

from dockyard.auth.secrets import PAT_PREFIX, fingerprint, verify_secret
from dockyard.auth.throttle import LoginThrottle, ip_key, user_key
from dockyard.auth.tokens import VerifiedToken
from dockyard.authz.principal import Principal, PrincipalKind
from dockyard.db.engine import Database
from dockyard.errors import Unauthorized
from dockyard.events.audit import record_audit
from dockyard.models import AccessToken, Account
from dockyard.models.accounts import ORG, ROBOT, USER
from dockyard.models.base import utcnow
from dockyard.settings import Settings

_LAST_USED_RESOLUTION = timedelta(minutes=1)
BAD_CREDENTIALS = "incorrect username or password"


def _unauthorized() -> Unauthorized:
    return Unauthorized("credentials", BAD_CREDENTIALS)


class Authenticator:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self.throttle = LoginThrottle(db, settings)

    async def login(self, username: str, secret: str, source_ip: str = "") -> Principal:
        """Authenticate with a password, a personal access token or a robot secret. Raises Unauthorized
        (wrong credentials, disabled account, expired or revoked token) or RateLimited (too many failures)."""
        username = username.strip().lower()[:255]
        if not username.isprintable() or not secret.isprintable():
            # No account name or secret has control characters (and PostgreSQL refuses NUL in text).
            raise _unauthorized()
        keys = [user_key(username), ip_key(source_ip)] if username else [ip_key(source_ip)]
        await self.throttle.check(keys)
        principal = await self._try(username, secret)
        if principal is None:
            await self.throttle.failed(keys)
            await self._audit_failure(username, source_ip)
            raise _unauthorized()
        if username:
            await self.throttle.succeeded(username)
        return principal

    async def _try(self, username: str, secret: str) -> Principal | None:
        if not secret or len(secret) > 1024:
            return None
        if secret.startswith(PAT_PREFIX):
            return await self._with_access_token(username, secret)
        async with self._db.read() as conn:
            account = (
                await conn.execute(select(Account).where(Account.name == username, Account.kind.in_([USER, ROBOT])))
            ).first()
        if not await verify_secret(account.password_hash if account is not None else None, secret):
            return None
        assert account is not None
        # The generation read with the hash: a password changed meanwhile does not sign in with the old one.
        return await self.principal_for(account.id, generation=account.credential_generation)

    async def _with_access_token(self, username: str, secret: str) -> Principal | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(AccessToken, Account.name)
                    .join(Account, Account.id == AccessToken.account_id)
                    .where(AccessToken.token_hash == fingerprint(secret))
                )
            ).first()
        if row is None or (username and row.name != username):
            return None
        principal = await self.principal_for(row.account_id, row.id)
        if principal is not None and (row.last_used_at is None or utcnow() - row.last_used_at > _LAST_USED_RESOLUTION):
            async with self._db.write() as conn:
                await conn.execute(update(AccessToken).where(AccessToken.id == row.id).values(last_used_at=utcnow()))
        return principal

    async def principal_for_token(self, token: VerifiedToken) -> Principal | None:
        """The live principal behind a verified refresh or API token, or None. A token got with a personal access
        token lives as long as that token does; any other must carry the account's current credential
        generation (a password change, a robot secret regeneration or "revoke sessions" moved it on)."""
        if token.account_id is None:
            return None
        if token.token_id is not None:
            return await self.principal_for(token.account_id, token.token_id)
        if token.generation is None:
            return None
        return await self.principal_for(token.account_id, generation=token.generation)

    async def principal_for(
        self, account_id: int, token_id: str | None = None, *, generation: int | None = None
    ) -> Principal | None:
        """The principal for a live account (and live access token), or None if disabled, deleted, expired or
        revoked, or if ``generation`` is given and is not the account's credential generation any more. A robot
        whose organization is disabled is refused too."""
        async with self._db.read(consistent=True) as conn:
            account = (await conn.execute(select(Account).where(Account.id == account_id))).first()
            if account is None or account.disabled or account.kind == ORG:
                return None
            if generation is not None and account.credential_generation != generation:
                return None
            if account.kind == ROBOT and account.owner_id is not None:
                org_disabled = (
                    await conn.execute(select(Account.disabled).where(Account.id == account.owner_id))
                ).scalar_one_or_none()
                if org_disabled is not False:
                    return None
            token: Row[Any] | None = None
            if token_id is not None:
                token = (
                    await conn.execute(
                        select(AccessToken).where(AccessToken.id == token_id, AccessToken.account_id == account_id)
                    )
                ).first()
                if token is None or token.revoked_at is not None:
                    return None
                if token.expires_at is not None and token.expires_at <= utcnow():
                    return None
        if token is None:
            return Principal(
                cast(PrincipalKind, account.kind),
                account.id,
                account.name,
                account.is_admin,
                credential_generation=account.credential_generation,
            )
        repositories = json.loads(token.repositories) if token.repositories else None
        return Principal(
            cast(PrincipalKind, account.kind),
            account.id,
            account.name,
            account.is_admin,
            token_id=token.id,
            token_scopes=frozenset(token.scopes.split()),
            token_repositories=frozenset(repositories) if repositories is not None else None,
            credential_generation=account.credential_generation,
        )

    async def _audit_failure(self, username: str, source_ip: str) -> None:
        async with self._db.read() as conn:
            exists = (
                await conn.execute(select(Account.id).where(Account.name == username, Account.kind == USER))
            ).first()
        if exists is None:
            return
        async with self._db.write() as conn:
            await record_audit(conn, username, "login.failure", actor=username, target=username, source_ip=source_ip)

    async def audit_login(self, principal: Principal, source_ip: str, via: str) -> None:
        if not principal.is_authenticated:
            return
        namespace = principal.name.split("+", 1)[0]
        async with self._db.write() as conn:
            await record_audit(
                conn,
                namespace,
                "login.success",
                actor=principal.name,
                target=principal.name,
                source_ip=source_ip,
                data={"via": via, "token_id": principal.token_id},
            )
