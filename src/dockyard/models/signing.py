"""Image signing: the public keys and keyless identities a namespace trusts, trust policies (namespace-wide or per
repository) and the cached verification result of each manifest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, utcnow


class TrustedKey(Base):
    __tablename__ = "trusted_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255), index=True)
    key_id: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of the DER SubjectPublicKeyInfo
    name: Mapped[str] = mapped_column(String(100))
    algorithm: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[str] = mapped_column(Text)  # PEM
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("namespace", "key_id", name="uq_trusted_keys_namespace_key"),)


class TrustedIdentity(Base):
    """A keyless signer a namespace trusts: a certificate from the admin's trusted root (a Fulcio CA) whose OIDC
    issuer is ``issuer`` and whose subject (SAN: e-mail or URI) fully matches the regular expression ``subject``
    (cosign's ``--certificate-oidc-issuer`` and ``--certificate-identity-regexp``)."""

    __tablename__ = "trusted_identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255), index=True)
    identity_id: Mapped[str] = mapped_column(String(64))  # "oidc-" + 16 hex of SHA-256(issuer, subject)
    name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(512))
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("namespace", "identity_id", name="uq_trusted_identities_namespace_identity"),)


class TrustPolicy(Base):
    """``repository`` NULL: the namespace's default; a repository's own row overrides it."""

    __tablename__ = "trust_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    repository: Mapped[str] = mapped_column(ascii_string(255), default="")  # "" for the namespace's default
    mode: Mapped[str] = mapped_column(String(8))  # off | warn | enforce
    exempt: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of globs on "repo" or "repo:tag"
    updated_by: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("namespace", "repository", name="uq_trust_policies_scope"),)


class SignatureCheck(Base):
    """The verification of one manifest against its namespace's keys as they were (``keys_version``)."""

    __tablename__ = "signature_checks"

    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True)
    keys_version: Mapped[str] = mapped_column(String(64))
    verified: Mapped[bool] = mapped_column(Boolean)
    results: Mapped[str] = mapped_column(Text)  # JSON list of {key_id, verified, signed_at, format, reason}
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NamespaceSigningKey(Base):
    """A signing key Dockyard keeps for a namespace (automated builds sign with it): the private half sealed
    with the server secret. Its public half is also one of the namespace's trusted keys."""

    __tablename__ = "namespace_signing_keys"

    namespace: Mapped[str] = mapped_column(ascii_string(255), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    private_key: Mapped[str] = mapped_column(Text)  # Fernet token of the PKCS#8 PEM
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
