"""Who is this? Checks a user name and secret (password, personal access token, robot secret, a single sign-on user's
CLI secret (``accounts.oidc_users``), or an organization's
name and one of its access tokens, which authenticates as the token's robot: ``accounts.org_tokens``), and turns the
identity inside a verified token back into a live ``Principal`` (the account may have been disabled since, its
password changed or its sessions revoked: see ``principal_for_token``).

Failures say only "incorrect username or password" whatever went wrong, and take as long whether or not the
account exists: an unknown user costs an argon2 verification of a dummy hash, an unknown robot a SHA-256 compare
against a dummy, as a known one does. Failures are written to the audit log of the user they name.

Passwords are the only guessable secrets, so only they are throttled (``LoginThrottle``: per account and client
address, and per address): the attempt is counted before it is verified, and at most
``effective_password_checks`` argon2 verifications run at once in a process (a login that cannot get a slot within
``password_check_wait_seconds`` gets 429, ``Retry-After: 1``). Access tokens, robot secrets and CLI secrets are random
256-bit values checked by one SHA-256: they are never throttled, so a backed-off password never stops them.

A user with two-factor sign-in (``auth.second_factor``) cannot log in with the password alone: the right password
raises ``SecondFactorNeeded`` — an ``Unauthorized`` telling clients such as ``docker login`` to use a personal
access token —, which the two doors that can ask for a code (the Hub's ``/users/login`` and the web hub's sign-in)
turn into a challenge. Access tokens, robot secrets and organization access tokens are unaffected.

With a ``PasswordDirectory`` (LDAP: ``accounts.ldap_sign_in``), the password of a name no local account has, or
of an account the directory created (``auth_source``), is checked by the directory instead of argon2 — in this one
place, so every door (the token endpoint, Basic on /v2, the Hub's login, the web hub) and the throttle treat both
alike. Local accounts (the administrator) never depend on the directory. A directory that cannot answer gives
the client the usual 401 (the attempt is given back to the throttle: it verified nothing).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Protocol, cast

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.second_factor import Purpose, SecondFactor, SecondFactorNeeded, has_second_factor
from dockyard.auth.secrets import (
    CLI_PREFIX,
    OAT_PREFIX,
    PAT_PREFIX,
    fingerprint,
    verify_robot_secret,
    verify_secret,
)
from dockyard.auth.throttle import LoginThrottle, Reservation, busy
from dockyard.auth.tokens import VerifiedToken
from dockyard.authz.principal import Principal, PrincipalKind
from dockyard.db.engine import Database
from dockyard.errors import RateLimited, Unauthorized
from dockyard.events.audit import record_audit
from dockyard.models import AccessToken, Account, OidcIdentity, OrgAccessToken
from dockyard.models.accounts import ORG, ROBOT, USER
from dockyard.models.base import utcnow
from dockyard.settings import Settings

_LAST_USED_RESOLUTION = timedelta(minutes=1)
_MAX_SECRET = 1024
ROBOT_SEPARATOR = "+"  # robot names are <org>+<name>; user names never contain it
BAD_CREDENTIALS = "incorrect username or password"
_DUMMY_FINGERPRINT = "0" * 64  # compared when the user has no CLI secret, so that a miss costs as a hit


def _unauthorized() -> Unauthorized:
    return Unauthorized("credentials", BAD_CREDENTIALS)


class DirectoryUnavailable(Exception):
    """The directory cannot check a password now (unreachable, TLS refused, misconfigured): not the user's fault."""


class PasswordDirectory(Protocol):
    """Checks the passwords of the accounts it owns (``Account.auth_source == source``) and of names no account
    has, creating and updating accounts as it sees fit."""

    source: str

    async def sign_in(self, username: str, password: str, source_ip: str) -> int | None:
        """The id of the account ``username`` signs in as, or None (unknown, wrong password, not allowed).
        Raises DirectoryUnavailable."""
        ...


class AuthObserver(Protocol):
    """Where the authenticator reports what operators watch (the Prometheus metrics)."""

    def password_verified(self) -> None: ...

    def login_throttled(self, reason: str) -> None: ...

    def login_failed(self, credential: str) -> None:
        """Credentials refused: ``password``, ``access_token``, ``robot_secret``, ``cli_secret`` or ``malformed``."""


class _Unobserved:
    def password_verified(self) -> None:
        pass

    def login_throttled(self, reason: str) -> None:
        pass

    def login_failed(self, credential: str) -> None:
        pass


class Authenticator:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        observer: AuthObserver | None = None,
        directory: PasswordDirectory | None = None,
    ) -> None:
        self._db = db
        self._directory = directory
        self.throttle = LoginThrottle(db, settings)
        self.second_factor = SecondFactor(db, settings, self.throttle)
        self._observer = observer or _Unobserved()
        self._slots = asyncio.Semaphore(settings.effective_password_checks)
        self._slot_wait = settings.password_check_wait_seconds

    async def login(self, username: str, secret: str, source_ip: str = "") -> Principal:
        """Authenticate with a password, a personal access token or a robot secret. Raises Unauthorized
        (wrong credentials, disabled account, expired or revoked token) or RateLimited (a password attempt while
        its account and address, or its address, back off; or no verification slot free)."""
        username = username.strip().lower()[:255]
        if not username.isprintable() or not secret.isprintable() or not secret or len(secret) > _MAX_SECRET:
            # No account name or secret has control characters (and PostgreSQL refuses NUL in text).
            self._observer.login_failed("malformed")
            raise _unauthorized()
        if secret.startswith(OAT_PREFIX):
            principal = await self._with_org_token(username, secret)
            if principal is None:
                raise _unauthorized()
            return principal
        if secret.startswith(PAT_PREFIX):
            principal = await self._with_access_token(username, secret)
            if principal is None:
                self._observer.login_failed("access_token")
                await self._failed(username, source_ip, None)
                raise _unauthorized()
            return principal
        if secret.startswith(CLI_PREFIX):
            principal = await self._with_cli_secret(username, secret)
            if principal is None:
                self._observer.login_failed("cli_secret")
                await self._failed(username, source_ip, None)
                raise _unauthorized()
            return principal
        if ROBOT_SEPARATOR in username:
            principal = await self._with_robot_secret(username, secret)
            if principal is None:
                self._observer.login_failed("robot_secret")
                raise _unauthorized()
            return principal
        if not username:
            self._observer.login_failed("malformed")
            raise _unauthorized()
        try:
            return await self._with_password(username, secret, source_ip)
        except SecondFactorNeeded:
            raise
        except Unauthorized:
            self._observer.login_failed("password")
            raise

    async def check_password(self, username: str, secret: str, source_ip: str = "") -> bool:
        """Whether ``secret`` is the user's current password, checked as a password login is: counted by the
        throttle before argon2 runs and within the process's verification slots (a change of password that asks
        for the current one must not become an unthrottled guessing oracle for a stolen session). Raises
        RateLimited while the account and address back off."""
        username = username.strip().lower()[:255]
        if not username or not secret.isprintable() or not secret or len(secret) > _MAX_SECRET:
            return False
        try:
            await self._with_password(username, secret, source_ip)
        except SecondFactorNeeded:
            return True
        except Unauthorized:
            return False
        return True

    async def complete_second_factor(self, token: str, code: str, purpose: Purpose, source_ip: str) -> Principal:
        """The principal of a password login completed with its second factor (``login_2fa_token`` and a TOTP
        or recovery code). Raises Unauthorized (bad token or code, the account changed meanwhile) or
        RateLimited."""
        redeemed = await self.second_factor.redeem(token, code, purpose, source_ip)
        principal = await self.principal_for(redeemed.account_id, generation=redeemed.generation)
        if principal is None:
            raise _unauthorized()
        return principal

    async def _with_password(self, username: str, secret: str, source_ip: str) -> Principal:
        try:
            reservation = await self.throttle.reserve(username, source_ip)
        except RateLimited:
            self._observer.login_throttled("backoff")
            raise
        try:
            async with self._db.read() as conn:
                account = (
                    await conn.execute(select(Account).where(Account.name == username, Account.kind == USER))
                ).first()
            if self._directory is not None and (account is None or account.auth_source == self._directory.source):
                principal = await self._with_directory(self._directory, username, secret, source_ip)
            else:
                async with self._password_slot():
                    self._observer.password_verified()
                    matches = await verify_secret(account.password_hash if account is not None else None, secret)
                # The generation read with the hash: a password changed meanwhile does not sign in with the old one.
                principal = (
                    await self.principal_for(account.id, generation=account.credential_generation)
                    if matches and account is not None
                    else None
                )
        except (RateLimited, DirectoryUnavailable) as exc:
            await self.throttle.cancelled(reservation)
            if isinstance(exc, DirectoryUnavailable):
                raise _unauthorized() from None  # logged by the directory; the client learns nothing of it
            self._observer.login_throttled("busy")
            raise
        if principal is None:
            await self._failed(username, source_ip, reservation, known=account is not None)
            raise _unauthorized()
        await self.throttle.succeeded(reservation)
        assert principal.account_id is not None
        async with self._db.read() as conn:
            if await has_second_factor(conn, principal.account_id):
                generation = principal.credential_generation or 0
                raise SecondFactorNeeded(principal.account_id, principal.name, generation)
        return principal

    async def _with_directory(
        self, directory: PasswordDirectory, username: str, secret: str, source_ip: str
    ) -> Principal | None:
        """The principal of a password the directory accepts (its account created or updated by it)."""
        self._observer.password_verified()
        account_id = await directory.sign_in(username, secret, source_ip)
        return await self.principal_for(account_id) if account_id is not None else None

    @asynccontextmanager
    async def _password_slot(self) -> AsyncIterator[None]:
        """One of the process's argon2 slots, waited for at most ``password_check_wait_seconds``."""
        if self._slots.locked() and self._slot_wait <= 0:
            raise busy()
        try:
            async with asyncio.timeout(self._slot_wait or None):
                await self._slots.acquire()
        except TimeoutError:
            raise busy() from None
        try:
            yield
        finally:
            self._slots.release()

    async def _with_robot_secret(self, username: str, secret: str) -> Principal | None:
        async with self._db.read() as conn:
            account = (
                await conn.execute(
                    select(Account.id, Account.password_hash, Account.credential_generation).where(
                        Account.name == username, Account.kind == ROBOT
                    )
                )
            ).first()
        if not verify_robot_secret(account.password_hash if account is not None else None, secret):
            return None
        assert account is not None
        return await self.principal_for(account.id, generation=account.credential_generation)

    async def _with_cli_secret(self, username: str, secret: str) -> Principal | None:
        """A single sign-on user's CLI secret (``accounts.oidc_users``), given with the user's name."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(Account.id, Account.credential_generation, OidcIdentity.cli_secret_hash)
                    .join(OidcIdentity, OidcIdentity.account_id == Account.id)
                    .where(Account.name == username, Account.kind == USER)
                )
            ).first()
        stored = row.cli_secret_hash if row is not None else _DUMMY_FINGERPRINT
        if not hmac.compare_digest(stored, fingerprint(secret)) or row is None:
            return None
        return await self.principal_for(row.id, generation=row.credential_generation)

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

    async def _with_org_token(self, org: str, secret: str) -> Principal | None:
        """An organization access token, given with its organization's name as the user name."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(OrgAccessToken.id, OrgAccessToken.robot_id, OrgAccessToken.last_used_at, Account.name)
                    .join(Account, Account.id == OrgAccessToken.org_id)
                    .where(OrgAccessToken.token_hash == fingerprint(secret))
                )
            ).first()
        if row is None or row.name != org:
            return None
        principal = await self.principal_for(row.robot_id, row.id)
        if principal is not None and (row.last_used_at is None or utcnow() - row.last_used_at > _LAST_USED_RESOLUTION):
            async with self._db.write() as conn:
                await conn.execute(
                    update(OrgAccessToken).where(OrgAccessToken.id == row.id).values(last_used_at=utcnow())
                )
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
            if account.expires_at is not None and account.expires_at <= utcnow():
                return None  # an expired robot
            if generation is not None and account.credential_generation != generation:
                return None
            if account.kind == ROBOT and account.owner_id is not None:
                org_disabled = (
                    await conn.execute(select(Account.disabled).where(Account.id == account.owner_id))
                ).scalar_one_or_none()
                if org_disabled is not False:
                    return None
            token: Row[Any] | None = None
            if token_id is not None and account.kind == ROBOT:
                return await _org_token_principal(conn, account, token_id)
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

    async def _failed(
        self, username: str, source_ip: str, reservation: Reservation | None, *, known: bool | None = None
    ) -> None:
        """Record a failure in one write transaction, whether or not the named user exists (so that both cost
        the same): the throttle's counts (passwords) and the user's audit log."""
        if not username:
            return
        if known is None:
            async with self._db.read() as conn:
                found = (
                    await conn.execute(select(Account.id).where(Account.name == username, Account.kind == USER))
                ).first()
            known = found is not None
        async with self._db.write() as conn:
            if reservation is not None:
                await self.throttle.failed(conn, reservation)
            if known:
                await record_audit(
                    conn, username, "login.failure", actor=username, target=username, source_ip=source_ip
                )

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


async def _org_token_principal(conn: AsyncConnection, robot: Row[Any], token_id: str) -> Principal | None:
    """The robot behind an organization access token, while the token is switched on and not expired."""
    token = (
        await conn.execute(
            select(OrgAccessToken.is_active, OrgAccessToken.expires_at).where(
                OrgAccessToken.id == token_id, OrgAccessToken.robot_id == robot.id
            )
        )
    ).first()
    if token is None or not token.is_active:
        return None
    if token.expires_at is not None and token.expires_at <= utcnow():
        return None
    return Principal(
        "robot", robot.id, robot.name, False, token_id=token_id, credential_generation=robot.credential_generation
    )
