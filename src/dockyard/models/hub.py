"""Docker Hub parity: organization access tokens (OATs).

An OAT is the secret of a hidden robot account of its organization (``robot_id``): the robot holds the token's
repository grants in ``repository_permissions``, so OATs and robots share one permission path. Only the SHA-256
of the secret is stored; the secret is shown once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, UTCDateTime, utcnow


class OrgAccessToken(Base):
    __tablename__ = "org_access_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid, the API's access_token_id
    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    robot_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(String(255), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    resources: Mapped[str] = mapped_column(Text, default="[]")  # JSON: Hub's resources as granted
    created_by: Mapped[str] = mapped_column(String(255), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
