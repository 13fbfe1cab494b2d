"""Lifecycle tables: a namespace's usage and quota (kept in the transaction of every blob link and repository
change), the per-(namespace, blob) reference counts that make "distinct blobs" exact, retention policies and the
history of their runs, a namespace's tag-immutability rules and the shared pull rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, utcnow


class NamespaceUsage(Base):
    """What a namespace uses and may use. ``storage_bytes`` sums the distinct blobs its repositories link (its
    repositories are counted from ``repositories``);
    ``storage_limit``/``repository_limit`` are hard limits (None: unlimited); ``warned`` is set when usage crosses
    ``soft_percent`` of the storage limit and cleared when it falls below, so the warning fires once per crossing."""

    __tablename__ = "namespace_usage"

    namespace: Mapped[str] = mapped_column(ascii_string(255), primary_key=True)
    storage_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    storage_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    repository_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    soft_percent: Mapped[int] = mapped_column(Integer, default=80, server_default="80")
    warned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class NamespaceBlob(Base):
    """How many repositories of ``namespace`` link blob ``digest`` (rows with ``refs`` 0 are deleted): the blob
    counts towards the namespace's storage exactly while its row exists."""

    __tablename__ = "namespace_blobs"

    namespace: Mapped[str] = mapped_column(ascii_string(255), primary_key=True)
    digest: Mapped[str] = mapped_column(String(140), primary_key=True)
    refs: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)


class RetentionPolicy(Base):
    """Which tags of a repository (``repository`` set) or of every repository of a namespace (``repository`` "")
    to keep. ``rules`` is a JSON list of ``{"pattern", "template", "value"}``; a tag no rule keeps is deleted by a
    run, unless protected (immutable, or signed with ``keep_signed``). ``untagged_days``: untagged manifests older
    than this many days are deleted too (None: left to garbage collection)."""

    __tablename__ = "retention_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    repository: Mapped[str] = mapped_column(ascii_string(255), default="", server_default="")
    rules: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")
    keep_signed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    untagged_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    scheduled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(255), nullable=True)

    __table_args__ = (Index("uq_retention_policies_scope", "namespace", "repository", unique=True),)


class RetentionRun(Base):
    """One run of a retention policy over one repository: what it deleted (or, ``dry_run``, would delete)."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    repository: Mapped[str] = mapped_column(ascii_string(255))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    trigger: Mapped[str] = mapped_column(String(16))  # "schedule" | "manual"
    actor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    tags_deleted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    manifests_deleted: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bytes_freed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    detail: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")  # JSON: the tags and digests

    __table_args__ = (Index("ix_retention_runs_scope", "namespace", "repository", "id"),)


class ImmutabilityRule(Base):
    """A namespace's immutability rule: tags matching ``pattern`` (``syntax`` ``glob`` or ``regex``, RE2) in the
    repositories whose name within the namespace matches the glob ``repositories`` cannot be moved or deleted.
    A repository's own rules (Docker Hub's ``immutable_tags_settings``) live on its ``repositories`` row."""

    __tablename__ = "immutability_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    pattern: Mapped[str] = mapped_column(String(255))
    syntax: Mapped[str] = mapped_column(String(8))  # glob | regex
    repositories: Mapped[str] = mapped_column(String(255), default="*")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_immutability_rules_namespace", "namespace"),)


class PullRateCount(Base):
    """Manifest GETs counted against one rate-limit subject (``account:<id>`` or ``ip:<address>``) in the fixed
    window starting at ``window_start`` (seconds since the epoch). Replicas add their batched counts with an
    upsert; rows of past windows are deleted by the flusher."""

    __tablename__ = "pull_rate_counts"

    subject: Mapped[str] = mapped_column(String(300), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_pull_rate_counts_window_start", "window_start"),)
