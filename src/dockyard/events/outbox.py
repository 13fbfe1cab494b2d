"""Record domain events in the caller's transaction (the outbox that the event bus, ``dockyard.events.bus``, hands to
its subscribers).

Names are dotted and past tense. Because the row is written in the same transaction as the change, an event
exists if and only if its change committed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.models import Event
from dockyard.models.base import utcnow

BLOB_UPLOADED = "blob.uploaded"
BLOB_MOUNTED = "blob.mounted"
BLOB_DELETED = "blob.deleted"
MANIFEST_PUSHED = "manifest.pushed"
MANIFEST_DELETED = "manifest.deleted"
TAG_UPDATED = "tag.updated"
TAG_DELETED = "tag.deleted"
REPOSITORY_CREATED = "repository.created"
REPOSITORY_DELETED = "repository.deleted"
POLICY_VIOLATED = "policy.violated"  # a pull of an unsigned image under a trust policy (warn: served; enforce: not)
REPOSITORY_PULLED = "repository.pulled"  # aggregated pulls (opt-in): written by the pull counter's flush
SCAN_COMPLETED = "scan.completed"  # an image manifest was scanned for vulnerabilities (dockyard.vulns)
VULNERABILITY_FOUND = "vulnerability.found"  # a re-match after a vulnerability-data import found new high/critical
QUOTA_WARNING = "quota.warning"  # a namespace's storage crossed its soft threshold (once per crossing)
QUOTA_EXCEEDED = "quota.exceeded"  # a push was refused at a namespace's hard limit
# automated builds (dockyard.builds): each state a build enters; the payload's "build" holds its record
BUILD_QUEUED = "build.queued"
BUILD_STARTED = "build.started"  # cloning
BUILD_BUILDING = "build.building"
BUILD_PUSHING = "build.pushing"
BUILD_SIGNING = "build.signing"  # SBOM, provenance and signature (dockyard.provenance)
BUILD_SUCCEEDED = "build.succeeded"
BUILD_FAILED = "build.failed"
BUILD_CANCELLED = "build.cancelled"
# replication (dockyard.replication): a run ended; the payload's "replication" holds the run's summary
REPLICATION_COMPLETED = "replication.completed"
REPLICATION_FAILED = "replication.failed"

EVENT_TYPES = frozenset(
    {
        BLOB_UPLOADED,
        BLOB_MOUNTED,
        BLOB_DELETED,
        MANIFEST_PUSHED,
        MANIFEST_DELETED,
        TAG_UPDATED,
        TAG_DELETED,
        REPOSITORY_CREATED,
        REPOSITORY_DELETED,
        REPOSITORY_PULLED,
        POLICY_VIOLATED,
        SCAN_COMPLETED,
        VULNERABILITY_FOUND,
        QUOTA_WARNING,
        QUOTA_EXCEEDED,
        BUILD_QUEUED,
        BUILD_STARTED,
        BUILD_BUILDING,
        BUILD_PUSHING,
        BUILD_SIGNING,
        BUILD_SUCCEEDED,
        BUILD_FAILED,
        BUILD_CANCELLED,
        REPLICATION_COMPLETED,
        REPLICATION_FAILED,
    }
)


_INSERT_EVENT = insert(Event)  # built once; values come as parameters


def event_row(
    event_type: str,
    *,
    repository: str | None = None,
    digest: str | None = None,
    tag: str | None = None,
    media_type: str | None = None,
    actor: str | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The outbox row of one event (with a new ``event_id``), for ``record_event``/``record_events``."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "occurred_at": utcnow(),
        "actor": actor,
        "repository": repository,
        "tag": tag,
        "digest": digest,
        "media_type": media_type,
        "payload": json.dumps(payload or {}, separators=(",", ":")),
    }


async def record_event(
    conn: AsyncConnection,
    event_type: str,
    *,
    repository: str | None = None,
    digest: str | None = None,
    tag: str | None = None,
    media_type: str | None = None,
    actor: str | None = None,
    payload: dict[str, Any] | None = None,
) -> str:
    """Append one event to the outbox inside ``conn``'s transaction and return its id."""
    row = event_row(
        event_type,
        repository=repository,
        digest=digest,
        tag=tag,
        media_type=media_type,
        actor=actor,
        payload=payload,
    )
    await conn.execute(_INSERT_EVENT, row)
    return str(row["event_id"])


def record_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append the ``event_row``s to the outbox, in order, inside a synchronous unit of work (one statement)."""
    if rows:
        conn.execute(_INSERT_EVENT, list(rows))
