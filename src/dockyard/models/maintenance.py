"""Leases for maintenance jobs that must run on one replica at a time (garbage collection, upload expiry), and the
history of garbage collections."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime


class MaintenanceLease(Base):
    __tablename__ = "maintenance_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class GCRun(Base):
    """One garbage collection: who or what started it, when, and what it deleted (``dry_run``: would delete).
    Written when the collection finishes (scheduled, ``dockyard gc``, or run from the site-admin page as a job)."""

    __tablename__ = "gc_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    trigger: Mapped[str] = mapped_column(String(16))  # "schedule" | "manual" | "cli"
    actor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    manifests: Mapped[int] = mapped_column(Integer, default=0)
    blob_links: Mapped[int] = mapped_column(Integer, default=0)
    blobs: Mapped[int] = mapped_column(Integer, default=0)
    uploads: Mapped[int] = mapped_column(Integer, default=0)
    bytes_freed: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_gc_runs_finished_at", "finished_at"),)
