"""Docker Hub parity: organization access tokens (OATs) and organization invites.

An OAT is the secret of a hidden robot account of its organization (``robot_id``): the robot holds the token's
repository grants in ``repository_permissions``, so OATs and robots share one permission path. Only the SHA-256
of the secret is stored; the secret is shown once.

An invite (``OrgInvite``) is a pending invitation to an organization (``dockyard.accounts.invites``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
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


class OrgInvite(Base):
    """A pending invitation to join an organization (and optionally one of its teams) with a role, addressed to a
    user by name (``invitee_id`` set: only that user may accept) or to an e-mail address (whoever holds the link
    and signs in). The link's token is stored as its SHA-256 (looked up on acceptance) and sealed with the server
    secret (``token_sealed``: mailed again on resend, shown to owners when no SMTP server is configured).
    Accepting or declining deletes the row; an expired invitation stays until it is deleted or replaced."""

    __tablename__ = "org_invites"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid, Docker Hub's invite id
    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), nullable=True)
    invitee: Mapped[str] = mapped_column(String(320))  # a user name, or an e-mail address (lower case)
    invitee_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True, index=True
    )
    role: Mapped[str] = mapped_column(String(8))  # owner | editor | member
    inviter: Mapped[str] = mapped_column(String(255), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # the last e-mail sent

    __table_args__ = (UniqueConstraint("org_id", "invitee", name="uq_org_invites_org_invitee"),)
