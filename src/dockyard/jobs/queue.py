"""Enqueueing background jobs: ``enqueue(conn, kind, payload, …)`` inside the caller's transaction.

Because the job row is written with the change that causes it, a job exists if and only if that change committed,
and a crash after the commit loses nothing: some runner (``dockyard.jobs.runner``) claims it later. In-process
callers that want it run at once call ``JobRunner.wake()`` *after* their transaction commits.

Contract for callers:

- ``kind`` names the handler (``webhooks.deliver``); ``payload`` is a small JSON object of ids and plain values —
  never an object, never data the handler can read from the DB itself. Handlers may run more than once (a
  worker can die after the work and before recording it), so they must be idempotent.
- ``dedupe_key`` is unique among *unfinished* jobs (queued or running): enqueueing a second one while the first
  has not finished does nothing and returns ``None``. Prefix it with the kind (``"search.reindex:42"``).
- Jobs that share an ``ordering_key`` run one at a time, in the order they were enqueued: a job is not claimed
  while an earlier job with its key is unfinished, including one waiting for a retry. On PostgreSQL enqueueing
  takes a transaction-scoped advisory lock on the key, so that ids (the order) follow commit order even when
  two transactions enqueue for the same key at once; on SQLite writers are serialised anyway.
- ``max_attempts`` bounds the runs; ``expires_at`` (the horizon) bounds the time: a job that would run or retry
  after it is ``dead`` instead.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.statements import dialect_insert_for, prepared
from dockyard.models import Job
from dockyard.models.base import utcnow

QUEUED: Final = "queued"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"  # the handler said so (``Fail``): not retried
DEAD: Final = "dead"  # out of attempts or past its horizon
UNFINISHED: Final = (QUEUED, RUNNING)
FINISHED: Final = (SUCCEEDED, FAILED, DEAD)

MAX_PAYLOAD_BYTES: Final = 64 * 1024
_ORDERING_LOCK_SPACE: Final = int.from_bytes(b"jobs", "big")  # first key of the two-key advisory lock


async def enqueue(
    conn: AsyncConnection,
    kind: str,
    payload: dict[str, Any],
    *,
    run_at: datetime | None = None,
    ordering_key: str | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 25,
    expires_at: datetime | None = None,
) -> int | None:
    """Add a job inside ``conn``'s transaction; its id, or ``None`` when ``dedupe_key`` matched an unfinished job.

    ``run_at`` (aware datetime) delays the first run; by default the job is due at once. Raises ``ValueError`` for
    an empty or over-long kind or key, a payload that is not a JSON object of plain values or is larger than
    ``MAX_PAYLOAD_BYTES``, or ``max_attempts`` < 1.
    """
    if not kind or len(kind) > 64:
        raise ValueError("job kind must be 1 to 64 characters")
    for name, key in (("ordering_key", ordering_key), ("dedupe_key", dedupe_key)):
        if key is not None and not 0 < len(key) <= 255:
            raise ValueError(f"{name} must be 1 to 255 characters")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    encoded = encode_payload(payload)
    if ordering_key is not None and conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:key))"),
            {"space": _ORDERING_LOCK_SPACE, "key": ordering_key},
        )
    now = utcnow()
    statement = prepared(conn, _insert_job)
    result = await conn.execute(
        statement,
        {
            "kind": kind,
            "payload": encoded,
            "state": QUEUED,
            "run_at": run_at or now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "expires_at": expires_at,
            "ordering_key": ordering_key,
            "dedupe_key": dedupe_key,
            "created_at": now,
        },
    )
    job_id = result.scalar_one_or_none()
    return None if job_id is None else int(job_id)


def _insert_job(dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING id`` into the jobs (a queued duplicate of an unfinished job's
    ``dedupe_key`` inserts nothing), built once per dialect."""
    return dialect_insert_for(dialect, Job).on_conflict_do_nothing().returning(Job.id)


def encode_payload(payload: dict[str, Any]) -> str:
    if not isinstance(payload, dict):
        raise ValueError("a job payload is a JSON object")
    try:
        encoded = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a job payload holds ids and plain JSON values only: {exc}") from exc
    if len(encoded) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"job payload is {len(encoded)} bytes; the limit is {MAX_PAYLOAD_BYTES}")
    return encoded


def decode_payload(encoded: str) -> dict[str, Any]:
    value = json.loads(encoded)
    return value if isinstance(value, dict) else {}
