"""The second factor of a password login: RFC 6238 TOTP codes and single-use recovery codes, and the short-lived
challenge (``login_2fa_token``) that a password login of a user with two-factor sign-in gets instead of a session.

A TOTP code is accepted for the current 30-second step or one step either side (clock drift), and only for a step
later than the last one accepted (``two_factor.last_step``, moved by a conditional UPDATE): a code seen once — or
any code of an earlier step — is a replay and refused, also when two requests race. A recovery code (80 random
bits, shown once; only its SHA-256 is stored) is marked used by a conditional UPDATE as well, so it works once.

Codes are guessable (10^6 TOTP values), so every check is counted by the password throttle
(``LoginThrottle``: per account and address — under the name ``2fa:<user>``, apart from the password's count —,
and per address) before it is made; a wrong code is a failed login
(audited ``login.failure`` with ``{"factor": "2fa"}``). A challenge lives ``CHALLENGE_SECONDS``, dies after
``CHALLENGE_ATTEMPTS`` wrong codes, is deleted when used, and carries the account's credential generation: a
password change or "sign out everywhere" in between voids it.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox, fingerprint
from dockyard.auth.throttle import LoginThrottle
from dockyard.db.engine import Database
from dockyard.errors import Unauthorized
from dockyard.events.audit import record_audit
from dockyard.models import Account, RecoveryCode, TwoFactor, TwoFactorChallenge
from dockyard.models.base import utcnow
from dockyard.settings import Settings

PERIOD = 30
DIGITS = 6
DRIFT_STEPS = 1
CHALLENGE_SECONDS = 300
CHALLENGE_ATTEMPTS = 5
RECOVERY_CODES = 10
SECOND_FACTOR_REFUSAL = (
    "two-factor authentication is enabled for this account: sign in with a personal access token instead of the "
    "password"
)
_TOTP = re.compile(r"[0-9]{6}")
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lower case: 5 bits a character
Purpose = Literal["api", "web"]
Factor = Literal["totp", "recovery"]


class SecondFactorNeeded(Unauthorized):
    """The password was right but the account has two-factor sign-in: a client that cannot ask for a code is told
    to use a personal access token (the message); one that can (``Authenticator.login(second_factor=…)``) gets
    the account and generation to start a challenge with."""

    def __init__(self, account_id: int, name: str, generation: int) -> None:
        super().__init__("credentials", SECOND_FACTOR_REFUSAL)
        self.account_id = account_id
        self.name = name
        self.generation = generation


@dataclass(frozen=True, slots=True)
class Redeemed:
    """A completed challenge: the account it signs in (if still at ``generation``) and the factor used."""

    account_id: int
    generation: int
    factor: Factor


def throttle_name(username: str) -> str:
    """The throttle counts code attempts apart from password attempts: a right password (which clears its own
    count) must not give a code guesser its attempts back."""
    return f"2fa:{username}"


def new_totp_secret() -> str:
    """A random base32 TOTP secret of 160 bits (RFC 4226's recommended length)."""
    import pyotp  # on first use, here and below: a server process may never see a second factor

    return pyotp.random_base32(32)


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """``count`` codes of 16 base32 characters (80 bits) written ``xxxx-xxxx-xxxx-xxxx``."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_hash(code: str) -> str:
    """How a recovery code is stored and looked up: SHA-256 of its characters without separators or case."""
    return fingerprint(re.sub(r"[\s-]", "", code).lower())


def otpauth_uri(secret: str, account: str, issuer: str) -> str:
    import pyotp

    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(name=account, issuer_name=issuer)


def matching_step(secret: str, code: str, after: int | None, now: float | None = None) -> int | None:
    """The time step (within the drift window, later than ``after``) whose TOTP value is ``code``, or None."""
    code = code.strip().replace(" ", "")
    if not _TOTP.fullmatch(code):
        return None
    import pyotp

    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    current = int((time.time() if now is None else now) // PERIOD)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # Every candidate is compared (no early exit) so that the time taken says nothing about which matched.
        if hmac.compare_digest(totp.at(step * PERIOD), code) and (after is None or step > after) and found is None:
            found = step
    return found


async def use_code(
    conn: AsyncConnection, box: SecretBox, account_id: int, code: str, *, pending: bool = False
) -> Factor | None:
    """Consume ``code`` for the account in the caller's write transaction: a TOTP code of a fresh step (moving
    ``last_step`` on) or an unused recovery code (marking it used). ``pending`` checks the not yet confirmed
    enrolment's secret instead (recovery codes do not exist yet). None when the code is wrong or replayed."""
    row = (
        await conn.execute(
            select(TwoFactor.secret, TwoFactor.last_step, TwoFactor.enabled_at).where(
                TwoFactor.account_id == account_id
            )
        )
    ).first()
    if row is None or (row.enabled_at is None) != pending:
        return None
    step = matching_step(box.open(row.secret).decode(), code, row.last_step)
    if step is not None:
        moved = await conn.execute(
            update(TwoFactor)
            .where(
                TwoFactor.account_id == account_id,
                or_(TwoFactor.last_step.is_(None), TwoFactor.last_step < step),
            )
            .values(last_step=step)
        )
        return "totp" if moved.rowcount == 1 else None  # a racing request used this step first
    if pending:
        return None
    used = await conn.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.account_id == account_id,
            RecoveryCode.code_hash == recovery_hash(code[:64]),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    return "recovery" if used.rowcount == 1 else None


async def has_second_factor(conn: AsyncConnection, account_id: int) -> bool:
    found = await conn.execute(
        select(TwoFactor.account_id).where(TwoFactor.account_id == account_id, TwoFactor.enabled_at.is_not(None))
    )
    return found.first() is not None


class SecondFactor:
    """Challenges and code checks. ``box`` opens the sealed TOTP secrets (the server secret's SecretBox)."""

    def __init__(self, db: Database, settings: Settings, throttle: LoginThrottle) -> None:
        self._db = db
        self._settings = settings
        self._throttle = throttle
        self._box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        if self._box is None:  # made on first use: a server that never sees 2FA needs no key
            self._box = SecretBox(self._settings.secret_key)
        return self._box

    async def enabled(self, account_id: int) -> bool:
        async with self._db.read() as conn:
            return await has_second_factor(conn, account_id)

    async def challenge(self, needed: SecondFactorNeeded, purpose: Purpose) -> str:
        """Start a challenge for a login whose password was right: the ``login_2fa_token`` to give the client."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._db.write() as conn:
            await conn.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.expires_at <= now))
            await conn.execute(
                insert(TwoFactorChallenge).values(
                    id=fingerprint(token),
                    account_id=needed.account_id,
                    generation=needed.generation,
                    purpose=purpose,
                    attempts=0,
                    created_at=now,
                    expires_at=now + timedelta(seconds=CHALLENGE_SECONDS),
                )
            )
        return token

    async def redeem(self, token: str, code: str, purpose: Purpose, source_ip: str) -> Redeemed:
        """Complete a challenge with a TOTP or recovery code. Raises Unauthorized (unknown, expired or used token;
        wrong or replayed code) or RateLimited (the throttle backs off the account and address)."""
        expired = Unauthorized("token", "the two-factor login token is invalid or has expired; sign in again")
        if not token or len(token) > 100 or not code or len(code) > 64:
            raise expired
        key = fingerprint(token)
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(TwoFactorChallenge, Account.name)
                    .join(Account, Account.id == TwoFactorChallenge.account_id)
                    .where(TwoFactorChallenge.id == key, TwoFactorChallenge.purpose == purpose)
                )
            ).first()
        if row is None or row.expires_at <= utcnow() or row.attempts >= CHALLENGE_ATTEMPTS:
            raise expired
        reservation = await self._throttle.reserve(throttle_name(row.name), source_ip)
        async with self._db.write() as conn:
            # Deleting the challenge first makes it single use even when two requests race with right codes.
            taken = await conn.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.id == key))
            factor = await use_code(conn, self.box, row.account_id, code) if taken.rowcount == 1 else None
            if factor is None:
                await self._throttle.failed(conn, reservation)
                if taken.rowcount == 1 and row.attempts + 1 < CHALLENGE_ATTEMPTS:
                    await conn.execute(  # put it back, one attempt used up
                        insert(TwoFactorChallenge).values(
                            id=key,
                            account_id=row.account_id,
                            generation=row.generation,
                            purpose=purpose,
                            attempts=row.attempts + 1,
                            created_at=row.created_at,
                            expires_at=row.expires_at,
                        )
                    )
                await record_audit(
                    conn,
                    row.name,
                    "login.failure",
                    actor=row.name,
                    target=row.name,
                    source_ip=source_ip,
                    data={"factor": "2fa"},
                )
        if factor is None:
            raise Unauthorized("credentials", "incorrect two-factor code")
        await self._throttle.succeeded(reservation)
        return Redeemed(row.account_id, row.generation, factor)

    async def check(self, account_id: int, username: str, code: str, source_ip: str) -> Factor | None:
        """Consume a code of an enabled factor outside a login (to disable it, or to renew recovery codes),
        throttled as a login is."""
        if not code or len(code) > 64:
            return None
        reservation = await self._throttle.reserve(throttle_name(username), source_ip)
        async with self._db.write() as conn:
            factor = await use_code(conn, self.box, account_id, code)
            if factor is None:
                await self._throttle.failed(conn, reservation)
        if factor is not None:
            await self._throttle.succeeded(reservation)
        return factor
