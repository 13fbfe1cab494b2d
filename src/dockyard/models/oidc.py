"""Single sign-on through an OpenID provider (``dockyard.auth.oidc``, ``dockyard.accounts.oidc_users``): which
provider identity (issuer, subject) is which Dockyard user, with the user's CLI secret (the password of
``docker login`` for a user who has none); the sign-ins under way (state, nonce, PKCE verifier, between the
redirect to the provider and its callback); and which team memberships the provider's groups gave, so that a
group the provider stops sending takes away only what it gave.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, UTCDateTime, utcnow


class OidcIdentity(Base):
    """A user's identity at the OpenID provider. ``cli_secret`` is sealed with the server secret (the user may
    look at it again, as in Harbor); ``cli_secret_hash`` (SHA-256) is what a login compares."""

    __tablename__ = "oidc_identities"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    cli_secret: Mapped[str] = mapped_column(Text)
    cli_secret_hash: Mapped[str] = mapped_column(String(64))
    groups: Mapped[str] = mapped_column(Text, default="[]")  # JSON: the groups of the last sign-in
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sign_in_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_oidc_identities_issuer_subject"),)


class OidcLogin(Base):
    """A sign-in sent to the provider and not back yet: the SHA-256 of its ``state``, the nonce the ID token must
    carry, the PKCE code verifier (sealed) and where to go afterwards. Deleted when the callback uses it."""

    __tablename__ = "oidc_logins"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(Text)
    next_path: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class OidcTeamGrant(Base):
    """A team membership that the provider's groups gave a user (and that its groups will take away)."""

    __tablename__ = "oidc_team_grants"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    group_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_oidc_team_grants_team_id", "team_id"),)
