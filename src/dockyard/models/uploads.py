"""Blob upload sessions: which repository (by name) and account they belong to, how many bytes are durably
stored and which digest algorithm they are hashed with.

A session names its repository instead of referencing its row: opening a session creates no repository (the
first blob that lands does), so that a client with push rights cannot create repositories by opening sessions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, UTCDateTime, ascii_string, utcnow


class Upload(Base):
    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    repository: Mapped[str] = mapped_column(ascii_string(255), index=True)
    # Who opened it (None: an open server's or a deleted account's): open sessions are capped per account.
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True, index=True
    )
    algorithm: Mapped[str] = mapped_column(String(16), default="sha256")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # A request appending to the upload holds a lease so that two requests (maybe on two replicas) never
    # write the same upload at once; a crashed holder's lease simply runs out.
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
