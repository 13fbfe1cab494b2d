"""Lifecycle guards: a namespace's tag-immutability rules and the shared pull rate-limit counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, utcnow


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
