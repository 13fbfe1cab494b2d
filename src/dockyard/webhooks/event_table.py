"""The one table of webhook event types and payload formats: every list of event names or formats derives from it.

Each event type has a ``status`` — ``live`` (Dockyard sends it today) or ``reserved`` (a later feature will; a
webhook may subscribe to it already) —, the outbox type it comes from (``None`` when none does; ``derived`` when
``dispatch.py`` picks it out among that type's events, as ``signature_added`` among ``manifest.pushed``) and the
payload formats that can carry it. ``dockyard.webhooks.events`` (names, validation), ``dockyard.webhooks.payloads``
(``supports``), ``dockyard.webhooks.snapshots`` (the formats a user may choose) and ``docs/webhooks.md`` (the Events
table; a unit test compares) follow it; the Hub API spells both lists out as ``Literal`` types for the OpenAPI
document, and a test keeps those equal too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from dockyard.events import outbox

Status = Literal["live", "reserved"]
LIVE: Status = "live"
RESERVED: Status = "reserved"


@dataclass(frozen=True, slots=True)
class PayloadFormatType:
    """One payload format. ``selectable``: a user may choose it for a webhook (API and CLI); the others are for
    server-wide endpoints configured in the settings only."""

    name: str
    selectable: bool


PAYLOAD_FORMAT_TABLE: tuple[PayloadFormatType, ...] = (
    PayloadFormatType("dockerhub", selectable=True),
    PayloadFormatType("cloudevents", selectable=True),
    PayloadFormatType("dockyard", selectable=True),
    PayloadFormatType("distribution", selectable=False),  # distribution's notification envelope
)

ALL_FORMATS = frozenset(f.name for f in PAYLOAD_FORMAT_TABLE)
_EXCEPT_DISTRIBUTION = ALL_FORMATS - {"distribution"}


@dataclass(frozen=True, slots=True)
class EventType:
    """One webhook event: its name (what receivers subscribe to), status, source outbox type and formats.
    ``derived``: ``dispatch.py`` picks the event out among the source's events (a signature among pushes), so the
    source type alone does not make it."""

    name: str
    status: Status
    source: str | None
    formats: frozenset[str]
    derived: bool = False


EVENT_TABLE: tuple[EventType, ...] = (
    EventType("push", LIVE, outbox.MANIFEST_PUSHED, ALL_FORMATS),
    EventType("tag_deleted", LIVE, outbox.TAG_DELETED, ALL_FORMATS),
    EventType("manifest_deleted", LIVE, outbox.MANIFEST_DELETED, ALL_FORMATS),
    EventType("repository_created", LIVE, outbox.REPOSITORY_CREATED, _EXCEPT_DISTRIBUTION),
    EventType("repository_deleted", LIVE, outbox.REPOSITORY_DELETED, ALL_FORMATS),
    # opt-in: pulls counted off the hot path and written aggregated by the pull counter's flush
    EventType("pull", LIVE, outbox.REPOSITORY_PULLED, ALL_FORMATS),
    # a ``manifest.pushed`` that ``dispatch.py`` recognises as a signature (tag scheme or signature referrer)
    EventType("signature_added", LIVE, outbox.MANIFEST_PUSHED, _EXCEPT_DISTRIBUTION, derived=True),
    EventType("policy_violation", LIVE, outbox.POLICY_VIOLATED, _EXCEPT_DISTRIBUTION),
    # dockyard.vulns: a scan of an image manifest (details.summary: findings per severity), and new critical/high
    # findings in an image after a vulnerability-data import (details.vulnerabilities)
    EventType("scan_completed", LIVE, outbox.SCAN_COMPLETED, _EXCEPT_DISTRIBUTION),
    EventType("vulnerability_found", LIVE, outbox.VULNERABILITY_FOUND, _EXCEPT_DISTRIBUTION),
    # dockyard.registry.quotas: a namespace's storage crossed its soft threshold; a push refused at a hard limit
    EventType("quota_warning", LIVE, outbox.QUOTA_WARNING, _EXCEPT_DISTRIBUTION),
    EventType("quota_exceeded", LIVE, outbox.QUOTA_EXCEEDED, _EXCEPT_DISTRIBUTION),
    # dockyard.builds: each state of an automated build (details.build: id, rule, ref, commit, tags, duration, digest)
    EventType("build_queued", LIVE, outbox.BUILD_QUEUED, _EXCEPT_DISTRIBUTION),
    EventType("build_started", LIVE, outbox.BUILD_STARTED, _EXCEPT_DISTRIBUTION),
    EventType("build_building", LIVE, outbox.BUILD_BUILDING, _EXCEPT_DISTRIBUTION),
    EventType("build_pushing", LIVE, outbox.BUILD_PUSHING, _EXCEPT_DISTRIBUTION),
    EventType("build_signing", LIVE, outbox.BUILD_SIGNING, _EXCEPT_DISTRIBUTION),
    EventType("build_succeeded", LIVE, outbox.BUILD_SUCCEEDED, _EXCEPT_DISTRIBUTION),
    EventType("build_failed", LIVE, outbox.BUILD_FAILED, _EXCEPT_DISTRIBUTION),
    EventType("build_cancelled", LIVE, outbox.BUILD_CANCELLED, _EXCEPT_DISTRIBUTION),
    # dockyard.replication: a run ended, all artifacts replicated or some failed for good (details.replication:
    # run, rule, direction, remote, trigger, state and the counts); the repository is the first one it touched
    EventType("replication_completed", LIVE, outbox.REPLICATION_COMPLETED, _EXCEPT_DISTRIBUTION),
    EventType("replication_failed", LIVE, outbox.REPLICATION_FAILED, _EXCEPT_DISTRIBUTION),
)

EVENT_TYPES: Mapping[str, EventType] = {event.name: event for event in EVENT_TABLE}


def event_names(status: Status | None = None) -> frozenset[str]:
    """The names of the events with ``status`` (every event when None)."""
    return frozenset(e.name for e in EVENT_TABLE if status is None or e.status == status)


def outbox_sources() -> Mapping[str, str]:
    """Outbox type → the webhook event it becomes (for the events that have one)."""
    return {e.source: e.name for e in EVENT_TABLE if e.source is not None and not e.derived}


def format_supports(payload_format: str, event: str) -> bool:
    """Whether ``payload_format`` can carry ``event`` (False for an unknown format or event)."""
    entry = EVENT_TYPES.get(event)
    return entry is not None and payload_format in entry.formats


def selectable_formats() -> tuple[str, ...]:
    """The formats a user may choose for a webhook, in table order."""
    return tuple(f.name for f in PAYLOAD_FORMAT_TABLE if f.selectable)
