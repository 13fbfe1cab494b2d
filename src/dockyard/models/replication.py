"""Replication (``dockyard.replication``): a namespace's rules for copying images to or from another registry,
each run of a rule, and the result of every artifact a run handled."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, utcnow


class ReplicationRule(Base):
    """Copy the repositories of ``namespace`` matching the filters to a remote registry (``push``), or the remote's
    repositories below ``remote_namespace`` into ``namespace`` (``pull``): local ``<namespace>/<path>`` is remote
    ``<remote_namespace>/<path>`` (``<namespace>/<path>`` when ``remote_namespace`` is empty)."""

    __tablename__ = "replication_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    name: Mapped[str] = mapped_column(String(100))
    direction: Mapped[str] = mapped_column(String(8))  # push | pull
    remote_url: Mapped[str] = mapped_column(String(2048))
    remote_namespace: Mapped[str] = mapped_column(ascii_string(255), default="")
    username: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed with the server secret
    repository_filter: Mapped[str] = mapped_column(String(255), default="*")  # glob on <path>
    tag_filter: Mapped[str] = mapped_column(String(255), default="*")  # glob on the tag
    replicate_deletes: Mapped[bool] = mapped_column(Boolean, default=False)
    trigger: Mapped[str] = mapped_column(String(16))  # manual | event (push rules) | schedule
    schedule_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bandwidth_limit_kib: Mapped[int | None] = mapped_column(Integer, nullable=True)  # KiB/s per transfer
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("namespace", "name"),)


class ReplicationRun(Base):
    """One run of a rule. ``state``: queued → running → succeeded | failed (``attempts`` counts its job's runs; a run
    with failed artifacts is tried again while attempts remain). ``scope`` (JSON): what an event asked for — one
    repository's tags to copy or to delete, or the images signed by a pushed signature; empty: everything."""

    __tablename__ = "replication_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("replication_rules.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    trigger: Mapped[str] = mapped_column(String(16))  # manual | event | schedule
    scope: Mapped[str] = mapped_column(Text, default="{}")
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    copied: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    bytes_copied: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_replication_runs_rule", "rule_id", "id"),)


class ReplicationResult(Base):
    """What one attempt of a run did with one artifact (a tag, or a referrer by digest): ``copied``, ``skipped``
    (the destination had it), ``deleted`` or ``failed`` (``reason``)."""

    __tablename__ = "replication_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("replication_runs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(512))  # repository:tag or repository@digest at the source
    destination: Mapped[str] = mapped_column(String(512))
    digest: Mapped[str | None] = mapped_column(String(140), nullable=True)
    result: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_replication_results_run", "run_id", "id"),)
