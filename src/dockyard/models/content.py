"""Registry content: repositories, blobs and their per-repository links, manifests, references and tags."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, utcnow


class Repository(Base):
    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(ascii_string(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The owning account's name: the first path component ("library" for one-component names).
    # Server defaults as migration 0003 added the columns to existing tables with them.
    namespace: Mapped[str] = mapped_column(ascii_string(255), index=True, default="library", server_default="library")
    is_private: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    description: Mapped[str] = mapped_column(String(100), default="", server_default="")
    full_description: Mapped[str] = mapped_column(Text, default="", server_default="")
    star_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pull_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_pulled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Docker Hub's ``immutable_tags_settings`` (dockyard.registry.immutability): whether the rules apply, and the
    # rules (RE2 regular expressions, a JSON list). On the row, so the manifest PUT reads them with its look-up.
    immutable_tags: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    immutable_tags_rules: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")


class Blob(Base):
    """A committed blob in storage. Global: the same bytes are stored once whatever repositories link them."""

    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(String(140), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RepositoryBlob(Base):
    """A blob is visible in a repository only through this link (upload, mount)."""

    __tablename__ = "repository_blobs"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_repository_blobs_digest", "digest"),)


class Manifest(Base):
    """A manifest, index or artifact, stored byte-exact in the DB (at most a few MiB)."""

    __tablename__ = "manifests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(140))
    media_type: Mapped[str] = mapped_column(String(255))
    artifact_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    subject_digest: Mapped[str | None] = mapped_column(String(140), nullable=True)
    annotations: Mapped[str | None] = mapped_column(Text, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
        Index("ix_manifests_subject", "repository_id", "subject_digest"),
    )


class ManifestReference(Base):
    """What a manifest points at: kind ``blob`` (config, layers), ``manifest`` (index children)."""

    __tablename__ = "manifest_references"

    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    digest: Mapped[str] = mapped_column(String(140), primary_key=True)

    __table_args__ = (Index("ix_manifest_references_digest", "digest"),)


class Tag(Base):
    __tablename__ = "tags"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(ascii_string(128), primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    pushed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_pulled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_tags_manifest_id", "manifest_id"),)
