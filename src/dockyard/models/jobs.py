"""The durable job queue: one row per background job (``dockyard.jobs`` enqueues, claims, leases and finishes them).

A row moves ``queued`` → ``running`` → ``succeeded`` | ``queued`` (a retry) | ``failed`` | ``dead``. While it
runs, ``lease_owner``/``lease_until`` say which runner holds it and until when; a lease that runs out makes the
job claimable again. ``run_at`` is when a queued job is next due. Finished rows stay for the retention period
as the job's history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, partial_index, utcnow

# Literal SQL for the partial indexes: both engines accept it, and the claim query repeats the same predicate
# (the planners use a partial index only when the query implies its WHERE clause).
_UNFINISHED = text("state IN ('queued', 'running')")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # a JSON object: ids and small values, never serialised objects
    state: Mapped[str] = mapped_column(String(16))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # attempts started so far
    max_attempts: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # the retry horizon
    ordering_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # of the latest attempt
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        # Claiming: due queued jobs in (run_at, id) order, and running jobs whose lease ran out.
        Index("ix_jobs_state_run_at", "state", "run_at", "id"),
        # "Is an earlier job with my ordering key unfinished?" — one index probe.
        partial_index("ix_jobs_ordering_key", "ordering_key", "id", where=_UNFINISHED),
        # A dedupe key is unique among unfinished jobs; finished ones keep theirs as history.
        partial_index("uq_jobs_dedupe_key", "dedupe_key", unique=True, where=_UNFINISHED),
        # Retention deletes finished jobs oldest first.
        Index("ix_jobs_finished_at", "finished_at"),
        # Ids are never reused on SQLite (deliveries and logs may name a job by id after it was purged).
        {"sqlite_autoincrement": True},
    )
