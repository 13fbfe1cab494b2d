"""Two-factor sign-in: a user's TOTP secret (sealed with the server secret), its recovery codes (SHA-256 only)
and the pending second-factor challenges of password logins (``login_2fa_token``, SHA-256 only).

An organization's "require two-factor" setting is the ``require_two_factor`` column of ``accounts``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, utcnow


class TwoFactor(Base):
    """One user's TOTP factor. ``enabled_at`` is None while the enrolment waits for its first valid code;
    ``last_step`` is the RFC 6238 time step of the last accepted code (a code of that step or earlier is a replay)."""

    __tablename__ = "two_factor"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)  # Fernet token of the base32 secret (auth.secrets.SecretBox)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class RecoveryCode(Base):
    """A single-use recovery code of a user's second factor: only its SHA-256 is stored (80 random bits)."""

    __tablename__ = "two_factor_recovery_codes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        UniqueConstraint("account_id", "code_hash", name="uq_two_factor_recovery_codes_account_code"),
        Index("ix_two_factor_recovery_codes_account_id", "account_id"),
    )


class TwoFactorChallenge(Base):
    """A password login waiting for its second factor: the SHA-256 of the ``login_2fa_token`` handed to the
    client, short-lived, deleted when used; ``attempts`` counts wrong codes against it."""

    __tablename__ = "two_factor_challenges"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(Integer)  # the account's credential generation at the password check
    purpose: Mapped[str] = mapped_column(String(8))  # api | web
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
