"""Managing a user's two-factor sign-in: enrolment (a TOTP secret sealed with the server secret, shown once as an
``otpauth://`` URI and its QR code in SVG), confirmation by a first valid code (which turns it on and returns the
recovery codes, shown once), new recovery codes, turning it off (with a code), and a site administrator's reset.

Only the user, with the account's own credentials (``require_interactive``: not a personal access token), enrols,
confirms, renews codes and turns the factor off; a site administrator (or the CLI) may only reset it. Every change
is audited in the user's namespace in the same transaction. Checking a code to turn the factor off or renew codes
consumes it and is throttled as a login (``auth.second_factor.SecondFactor.check``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.common import is_self, require_interactive, require_superuser, require_user
from dockyard.auth.second_factor import (
    SecondFactor,
    new_recovery_codes,
    new_totp_secret,
    otpauth_uri,
    recovery_hash,
    use_code,
)
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, Invalid
from dockyard.events.audit import record_audit
from dockyard.models import RecoveryCode, TwoFactor, TwoFactorChallenge
from dockyard.models.base import utcnow

ISSUER = "Dockyard"


@dataclass(frozen=True, slots=True)
class TwoFactorStatus:
    enabled: bool
    pending: bool  # an enrolment waits for its first code
    enabled_at: datetime | None
    recovery_codes_left: int


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A new, not yet confirmed factor: what the user's authenticator app needs (shown once)."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as a standalone SVG document (no XML declaration, scalable)."""
    import segno  # QR codes (and xml): on the first enrolment, not in every server process

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, svgclass=None)
    return out.getvalue().decode()


class TwoFactorService:
    """Raises NotFound (no such user), Denied (another user's factor; a token, robot or anonymous caller; a reset
    by a non-administrator), Conflict (already on; not on; no enrolment pending) and Invalid (a wrong code)."""

    def __init__(self, db: Database, second_factor: SecondFactor) -> None:
        self._db = db
        self._factor = second_factor

    async def _own(self, conn: AsyncConnection, username: str, actor: Principal, what: str) -> Row[Any]:
        require_interactive(actor, what)
        user = await require_user(conn, username)
        if not is_self(actor, user.id):
            raise Denied("account", f"only the user may {what}")
        return user

    async def status(self, username: str, *, actor: Principal) -> TwoFactorStatus:
        """The user's own status, with the account's own credentials (site administrators may read anyone's)."""
        require_interactive(actor, "see two-factor sign-in")
        async with self._db.read() as conn:
            user = await require_user(conn, username)
            if not is_self(actor, user.id) and not actor.superuser:
                raise Denied("account", "only the user or a site administrator may see this")
            row = (await conn.execute(select(TwoFactor).where(TwoFactor.account_id == user.id))).first()
            left = (
                await conn.execute(
                    select(func.count())
                    .select_from(RecoveryCode)
                    .where(RecoveryCode.account_id == user.id, RecoveryCode.used_at.is_(None))
                )
            ).scalar_one()
        enabled = row is not None and row.enabled_at is not None
        return TwoFactorStatus(enabled, row is not None and not enabled, row.enabled_at if row else None, left)

    async def enrol(self, username: str, *, actor: Principal) -> Enrolment:
        """Start (or restart) an enrolment: a new secret, sealed at rest, waiting for its first code."""
        secret = new_totp_secret()
        async with self._db.write() as conn:
            user = await self._own(conn, username, actor, "set up two-factor sign-in")
            current = (await conn.execute(select(TwoFactor.enabled_at).where(TwoFactor.account_id == user.id))).first()
            if current is not None and current.enabled_at is not None:
                raise Conflict("account", "two-factor sign-in is already on; turn it off first to enrol again")
            await conn.execute(delete(TwoFactor).where(TwoFactor.account_id == user.id))
            await conn.execute(
                insert(TwoFactor).values(
                    account_id=user.id, secret=self._factor.box.seal(secret.encode()), created_at=utcnow()
                )
            )
        uri = otpauth_uri(secret, username, ISSUER)
        return Enrolment(secret, uri, qr_svg(uri))

    async def confirm(self, username: str, code: str, *, actor: Principal, source_ip: str = "") -> list[str]:
        """Turn the pending enrolment on with a first valid code; returns the recovery codes (shown once)."""
        codes = new_recovery_codes()
        async with self._db.write() as conn:
            user = await self._own(conn, username, actor, "set up two-factor sign-in")
            row = (await conn.execute(select(TwoFactor.enabled_at).where(TwoFactor.account_id == user.id))).first()
            if row is None or row.enabled_at is not None:
                raise Conflict("account", "no two-factor enrolment is waiting for a code; start one first")
            if await use_code(conn, self._factor.box, user.id, code, pending=True) is None:
                raise Invalid("credentials", "incorrect two-factor code")
            await conn.execute(update(TwoFactor).where(TwoFactor.account_id == user.id).values(enabled_at=utcnow()))
            await _store_codes(conn, user.id, codes)
            await record_audit(
                conn, username, "user.2fa.enable", actor=actor.audit_name, target=username, source_ip=source_ip
            )
        return codes

    async def renew_recovery_codes(
        self, username: str, code: str, *, actor: Principal, source_ip: str = ""
    ) -> list[str]:
        """New recovery codes for an enabled factor (the old ones stop working), given a current code."""
        user = await self._check_code(username, code, actor, source_ip, "make new recovery codes")
        codes = new_recovery_codes()
        async with self._db.write() as conn:
            await _store_codes(conn, user.id, codes)
            await record_audit(
                conn, username, "user.2fa.recovery_codes", actor=actor.audit_name, target=username, source_ip=source_ip
            )
        return codes

    async def disable(self, username: str, code: str, *, actor: Principal, source_ip: str = "") -> None:
        """Turn the factor off, given a current TOTP or recovery code."""
        user = await self._check_code(username, code, actor, source_ip, "turn off two-factor sign-in")
        async with self._db.write() as conn:
            await _remove(conn, user.id)
            await record_audit(
                conn, username, "user.2fa.disable", actor=actor.audit_name, target=username, source_ip=source_ip
            )

    async def reset(self, username: str, *, actor: Principal, source_ip: str = "") -> bool:
        """A site administrator removes the user's factor (lost device and codes); False if there was none."""
        require_superuser(actor, "reset another user's two-factor sign-in")
        async with self._db.write() as conn:
            user = await require_user(conn, username)
            had = await _remove(conn, user.id)
            await record_audit(
                conn,
                username,
                "user.2fa.reset",
                actor=actor.audit_name,
                target=username,
                source_ip=source_ip,
                data={"had_second_factor": had},
            )
        return had

    async def _check_code(self, username: str, code: str, actor: Principal, source_ip: str, what: str) -> Row[Any]:
        async with self._db.read() as conn:
            user = await self._own(conn, username, actor, what)
            on = (
                await conn.execute(
                    select(TwoFactor.account_id).where(
                        TwoFactor.account_id == user.id, TwoFactor.enabled_at.is_not(None)
                    )
                )
            ).first()
        if on is None:
            raise Conflict("account", "two-factor sign-in is not on")
        if await self._factor.check(user.id, username, code, source_ip) is None:
            raise Invalid("credentials", "incorrect two-factor code")
        return user


async def _store_codes(conn: AsyncConnection, account_id: int, codes: list[str]) -> None:
    await conn.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    await conn.execute(
        insert(RecoveryCode), [{"account_id": account_id, "code_hash": recovery_hash(code)} for code in codes]
    )


async def _remove(conn: AsyncConnection, account_id: int) -> bool:
    removed = await conn.execute(delete(TwoFactor).where(TwoFactor.account_id == account_id))
    await conn.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
    await conn.execute(delete(TwoFactorChallenge).where(TwoFactorChallenge.account_id == account_id))
    return removed.rowcount == 1
