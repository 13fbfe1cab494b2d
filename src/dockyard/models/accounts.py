"""Identity and access: accounts (users, organizations, robots), memberships, teams, repository permissions,
personal access tokens, refresh tokens, stars, the audit log, token-signing keys and login-failure counters."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, utcnow

USER = "user"
ORG = "org"
ROBOT = "robot"


class Account(Base):
    """A user, an organization or a robot. Users and organizations share one namespace of names (a repository
    ``ns/name`` belongs to the account ``ns``); robots are named ``org+name`` and belong to ``owner_id``."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(ascii_string(255), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # argon2id for passwords; "sha256$<hex>" for robot secrets (random, 256 bits: a fast hash is enough).
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Bumped by a password change, a robot secret regeneration and "revoke sessions": refresh and API tokens
    # carry the value they were issued under and are refused once it moved on.
    credential_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    full_name: Mapped[str] = mapped_column(String(255), default="")
    company: Mapped[str] = mapped_column(String(255), default="")
    location: Mapped[str] = mapped_column(String(255), default="")
    profile_url: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    default_private: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: the server default
    # Organizations: members must have two-factor sign-in to reach the organization's repositories.
    require_two_factor: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # robots: when they stop working
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Users of an external directory ("ldap": accounts.ldap_sign_in) have no local password: the directory checks
    # it at every sign-in. None: a local account.
    auth_source: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (Index("ix_accounts_owner_id", "owner_id"),)


class OrgMember(Base):
    __tablename__ = "org_members"

    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))  # owner | editor | member
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_org_members_user_id", "user_id"),)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(ascii_string(64))
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid4()))  # Docker Hub's group uuid

    __table_args__ = (UniqueConstraint("org_id", "name", name="uq_teams_org_name"),)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_team_members_user_id", "user_id"),)


class RepositoryPermission(Base):
    """A grant of read / write / admin on one repository to a team, or to one account (a collaborator on a
    user's repository, or a robot)."""

    __tablename__ = "repository_permissions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), nullable=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True)
    permission: Mapped[str] = mapped_column(String(8))  # read | write | admin

    __table_args__ = (
        UniqueConstraint("repository_id", "team_id", name="uq_repository_permissions_team"),
        UniqueConstraint("repository_id", "account_id", name="uq_repository_permissions_account"),
        Index("ix_repository_permissions_team_id", "team_id"),
        Index("ix_repository_permissions_account_id", "account_id"),
    )


class AccessToken(Base):
    """A personal access token. Only the SHA-256 of the secret is stored; the secret is shown once."""

    __tablename__ = "access_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid, the API's token id
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise a token in lists
    scopes: Mapped[str] = mapped_column(String(255))  # space-separated repo:read | repo:write | ...
    repositories: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list of ns/name, or all
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_ip: Mapped[str] = mapped_column(String(64), default="")


class RefreshToken(Base):
    """A refresh token (``offline_token``) issued by ``/v2/token``, stored by the SHA-256 of its ``jti`` so that
    one can be revoked. Tokens rotated from one another share a ``family_id``; reusing a rotated one revokes the
    family."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the JWT's jti
    family_id: Mapped[str] = mapped_column(String(32), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(100), default="")
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WebSession(Base):
    """A web hub sign-in (``dockyard.auth.web_sessions``), stored by the SHA-256 of its cookie's random token so
    that it can be ended server-side. ``generation`` is the account's credential generation at sign-in: "sign
    out everywhere" and a password change move it on, which ends the session too."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the cookie's token
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Star(Base):
    __tablename__ = "stars"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_stars_repository_id", "repository_id"),)


class AuditEntry(Base):
    """One security-relevant action: who (actor) did what (action) to which target, from where, when.
    ``namespace`` is the account whose owners may read the entry. When that account is deleted its entries are
    kept but archived (``archived_at`` set, ``archived_account_id`` the deleted account's id, NULL when a
    migration archived entries whose account was already gone): a later account of the same name never sees
    them."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255), default="")
    target: Mapped[str] = mapped_column(String(512), default="")
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    data: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    archived_account_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    __table_args__ = (Index("ix_audit_log_namespace_created", "namespace", "created_at"),)


class ReservedName(Base):
    """The name of a deleted user or organization, which nobody may take until ``reserved_until`` (the
    ``deleted_name_grace_days`` setting): a new account of that name would otherwise inherit what others still
    expect of it (pull references, webhooks pointed at it, trust in its signatures)."""

    __tablename__ = "reserved_names"

    name: Mapped[str] = mapped_column(ascii_string(255), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger)  # the deleted account's id
    kind: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reserved_until: Mapped[datetime] = mapped_column(UTCDateTime())


class SigningKey(Base):
    """A key that signs registry and API tokens. The private half is encrypted with the server secret; a
    retired key still verifies the tokens it signed until they expire."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    private_key: Mapped[str] = mapped_column(Text)  # Fernet token of the PKCS#8 PEM
    public_key: Mapped[str] = mapped_column(Text)  # SubjectPublicKeyInfo PEM
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LoginFailure(Base):
    """Failed-login counters for brute-force protection, keyed ``user:<name>`` or ``ip:<address>``."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
