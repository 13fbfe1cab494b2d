"""Web hub sessions: a sign-in of the browser UI, kept server-side so that it can be ended.

The browser holds a random 256-bit token (in a signed cookie that ``dockyard.http.web`` sets); the table holds
only its SHA-256. A session is live while it is not revoked, its absolute lifetime (``web_session_lifetime_seconds``)
has not run out, it was used within ``web_session_idle_seconds``, and the account is live with the credential
generation it had at sign-in — so "sign out everywhere" (``auth.refresh.end_sessions``, which also revokes the
rows) and a password change end every web session of the account, and disabling the account ends them at once.

Sign-in goes through ``Authenticator.login`` — the same brute-force throttle as the token endpoints — and only
with a user's password: personal access tokens and robot secrets are for clients, not for the browser. For a user
with two-factor sign-in the right password raises ``SecondFactorNeeded``; ``challenge`` turns it into a
``login_2fa_token`` for the page that asks for the code, and ``sign_in_second_factor`` opens the session once a
code completes it (``auth.second_factor``). A single sign-on (``auth.oidc``) opens its session with
``sign_in_verified`` once the provider's answer is verified and the user is known (``accounts.oidc_users``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from dockyard.auth.credentials import Authenticator
from dockyard.auth.second_factor import SecondFactorNeeded
from dockyard.auth.secrets import CLI_PREFIX, OAT_PREFIX, PAT_PREFIX, ROBOT_PREFIX, fingerprint
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.errors import Unauthorized
from dockyard.models import WebSession
from dockyard.models.base import utcnow
from dockyard.settings import Settings

# last_seen_at is written at most this often per session: a page view is not a write transaction.
_TOUCH_RESOLUTION = timedelta(minutes=1)
_MAX_TOKEN = 100


@dataclass(frozen=True, slots=True)
class WebSignIn:
    """A new session: ``token`` goes into the cookie (the only time it exists in the clear)."""

    token: str
    principal: Principal
    expires_at: datetime


class WebSessions:
    """Start, resolve and end web sessions. Safe for concurrent use."""

    def __init__(self, db: Database, settings: Settings, authenticator: Authenticator) -> None:
        self._db = db
        self._authenticator = authenticator
        self._idle = timedelta(seconds=settings.web_session_idle_seconds)
        self._lifetime = timedelta(seconds=settings.web_session_lifetime_seconds)

    async def sign_in(self, username: str, password: str, source_ip: str = "") -> WebSignIn:
        """Check a user's password (throttled as every password login is) and open a session. Raises
        ``Unauthorized`` (wrong credentials, not a user, a token instead of a password) or ``RateLimited``."""
        if password.startswith((PAT_PREFIX, ROBOT_PREFIX, OAT_PREFIX, CLI_PREFIX)) or "+" in username:
            raise Unauthorized("credentials", "sign in with a user name and password")
        principal = await self._authenticator.login(username, password, source_ip)
        if principal.kind != "user" or principal.account_id is None or principal.token_id is not None:
            raise Unauthorized("credentials", "sign in with a user name and password")
        return await self._open(principal, source_ip, "web")

    async def count_attempt(self, username: str, source_ip: str = "") -> None:
        """Count a self sign-up as a password attempt of the login throttle (it stays counted); raises
        ``RateLimited`` while the address or the (name, address) pair backs off."""
        await self._authenticator.throttle.reserve(username, source_ip)

    async def challenge(self, needed: SecondFactorNeeded) -> str:
        """The ``login_2fa_token`` of a web sign-in whose password was right and that needs a code."""
        return await self._authenticator.second_factor.challenge(needed, "web")

    async def sign_in_second_factor(self, token: str, code: str, source_ip: str = "") -> WebSignIn:
        """Open a session for a web sign-in's challenge and a TOTP or recovery code. Raises ``Unauthorized`` or
        ``RateLimited`` (wrong codes are throttled as wrong passwords are)."""
        principal = await self._authenticator.complete_second_factor(token, code, "web", source_ip)
        return await self._open(principal, source_ip, "web-2fa")

    async def sign_in_verified(self, account_id: int, source_ip: str, via: str) -> WebSignIn:
        """Open a session for a user whom another door has verified (single sign-on: ``auth.oidc``). Raises
        ``Unauthorized`` when the account is not a live user."""
        principal = await self._authenticator.principal_for(account_id)
        if principal is None or principal.kind != "user":
            raise Unauthorized("credentials", "this account cannot sign in")
        return await self._open(principal, source_ip, via)

    async def _open(self, principal: Principal, source_ip: str, via: str) -> WebSignIn:
        assert principal.account_id is not None
        token = secrets.token_urlsafe(32)
        now = utcnow()
        expires = now + self._lifetime
        async with self._db.write() as conn:
            # The account's ended sessions are of no further use: drop them while we are here.
            await conn.execute(
                delete(WebSession).where(
                    WebSession.account_id == principal.account_id,
                    (WebSession.expires_at <= now) | WebSession.revoked_at.is_not(None),
                )
            )
            await conn.execute(
                insert(WebSession).values(
                    id=fingerprint(token),
                    account_id=principal.account_id,
                    generation=principal.credential_generation or 0,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=expires,
                )
            )
        await self._authenticator.audit_login(principal, source_ip, via)
        return WebSignIn(token, principal, expires)

    async def resolve(self, token: str) -> Principal | None:
        """The live principal of a session token, or None (unknown, ended, idle too long, account changed)."""
        if not token or len(token) > _MAX_TOKEN:
            return None
        key = fingerprint(token)
        now = utcnow()
        async with self._db.read() as conn:
            row = (await conn.execute(select(WebSession).where(WebSession.id == key))).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now or row.last_seen_at + self._idle <= now:
            return None
        principal = await self._authenticator.principal_for(row.account_id, generation=row.generation)
        if principal is None:
            return None
        if now - row.last_seen_at >= _TOUCH_RESOLUTION:
            async with self._db.write() as conn:
                await conn.execute(update(WebSession).where(WebSession.id == key).values(last_seen_at=now))
        return principal

    async def sign_out(self, token: str) -> None:
        """End the session of ``token`` (no error if it is unknown or already ended)."""
        if not token or len(token) > _MAX_TOKEN:
            return
        async with self._db.write() as conn:
            await conn.execute(
                update(WebSession)
                .where(WebSession.id == fingerprint(token), WebSession.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
