"""Webhook event names, the outbox event types they come from, and ``EventView``: one event as every payload
format sees it.

Outbox types are dotted and past tense (``manifest.pushed``, see ``dockyard.events.outbox``); webhook event names
are the snake_case words receivers subscribe to (``push``), as in Docker Hub and GitHub. ``EventView`` is built
once per event (from the outbox row plus the repository's metadata) and handed to every payload builder, so the
builders never touch the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dockyard.core.names import LIBRARY, namespace_of, short_name_of
from dockyard.webhooks.event_table import LIVE, RESERVED, event_names, outbox_sources

PUSH = "push"
PULL = "pull"
TAG_DELETED = "tag_deleted"
MANIFEST_DELETED = "manifest_deleted"
REPOSITORY_CREATED = "repository_created"
REPOSITORY_DELETED = "repository_deleted"
SIGNATURE_ADDED = "signature_added"
POLICY_VIOLATION = "policy_violation"
SCAN_COMPLETED = "scan_completed"
VULNERABILITY_FOUND = "vulnerability_found"
QUOTA_WARNING = "quota_warning"
QUOTA_EXCEEDED = "quota_exceeded"
BUILD_QUEUED = "build_queued"
BUILD_STARTED = "build_started"
BUILD_SUCCEEDED = "build_succeeded"
BUILD_FAILED = "build_failed"
BUILD_BUILDING = "build_building"
BUILD_PUSHING = "build_pushing"
BUILD_SIGNING = "build_signing"
BUILD_CANCELLED = "build_cancelled"
REPLICATION_COMPLETED = "replication_completed"
REPLICATION_FAILED = "replication_failed"

# Derived from the event table (``dockyard.webhooks.event_table``): live events are sent today; reserved ones are
# for later features (builds), and webhooks may subscribe to them already.
EMITTED_EVENTS = event_names(LIVE)
RESERVED_EVENTS = event_names(RESERVED)
WEBHOOK_EVENTS = event_names()

# Outbox type → webhook event. ``tag.updated`` is not mapped: the ``manifest.pushed`` of the same push carries every
# tag it set. ``signature_added`` has no outbox type of its own: ``dispatch.py`` recognises a signature among the
# ``manifest.pushed`` events.
OUTBOX_TO_WEBHOOK: Mapping[str, str] = outbox_sources()


def webhook_event_for(outbox_type: str) -> str | None:
    """The webhook event an outbox event becomes, or None if webhooks do not see it (blob events, tag.updated)."""
    return OUTBOX_TO_WEBHOOK.get(outbox_type)


@dataclass(frozen=True, slots=True)
class Platform:
    """One platform of an image (an index has several)."""

    os: str
    architecture: str
    variant: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"os": self.os, "architecture": self.architecture, "variant": self.variant}


@dataclass(frozen=True, slots=True)
class RepositoryInfo:
    """The repository's Hub metadata, as payloads show it. ``owner`` is the owning account (the namespace)."""

    description: str = ""
    full_description: str = ""
    is_private: bool = True
    star_count: int = 0
    date_created: datetime | None = None
    owner: str = ""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The client request that caused the event, when known (distribution's ``RequestRecord``)."""

    id: str = ""
    addr: str = ""
    host: str = ""
    method: str = ""
    useragent: str = ""


@dataclass(frozen=True, slots=True)
class EventView:
    """Everything a payload needs about one event. Immutable; ``occurred_at`` is normalised to UTC.

    ``repository`` is the registry name (``acme/app``, or ``alpine`` for a ``library`` repository); ``namespace``
    and ``name`` are its Hub parts (``library``, ``alpine``). ``tag`` is the tag the event is about (the first tag
    of a push), ``tags`` every tag it touched. ``details`` holds event-specific extras (a pull count and window, a
    build id) that only the Dockyard and CloudEvents formats carry. ``base_url`` is the server's public URL without
    a trailing slash ("" when unknown: URLs in payloads are then relative).
    """

    event_id: str
    event: str
    occurred_at: datetime
    repository: str
    namespace: str
    name: str
    actor: str | None = None
    tag: str | None = None
    tags: tuple[str, ...] = ()
    digest: str | None = None
    media_type: str | None = None
    size: int | None = None
    platforms: tuple[Platform, ...] = ()
    info: RepositoryInfo = field(default_factory=RepositoryInfo)
    base_url: str = ""
    request: RequestInfo | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.event not in WEBHOOK_EVENTS:
            raise ValueError(f"unknown webhook event {self.event!r}")
        object.__setattr__(self, "occurred_at", as_utc(self.occurred_at))
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "platforms", tuple(self.platforms))

    @property
    def full_name(self) -> str:
        """``namespace/name`` (``library/alpine`` even when the registry name is ``alpine``), Docker Hub's
        ``repo_name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def is_official(self) -> bool:
        return self.namespace == LIBRARY

    @property
    def repo_url(self) -> str:
        """The repository's page, in Docker Hub's URL scheme (``/_/<name>`` for library, ``/r/<ns>/<name>``)."""
        if self.is_official:
            return f"{self.base_url}/_/{self.name}"
        return f"{self.base_url}/r/{self.namespace}/{self.name}"

    @property
    def manifest_url(self) -> str | None:
        """``/v2/<name>/manifests/<digest>``, or None without a digest."""
        if self.digest is None:
            return None
        return f"{self.base_url}/v2/{self.repository}/manifests/{self.digest}"


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive value is taken to be UTC already (SQLite hands those back)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def from_outbox(
    *,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    repository: str,
    actor: str | None = None,
    tag: str | None = None,
    digest: str | None = None,
    media_type: str | None = None,
    payload: Mapping[str, Any] | str | None = None,
    platforms: tuple[Platform, ...] = (),
    info: RepositoryInfo | None = None,
    base_url: str = "",
    request: RequestInfo | None = None,
) -> EventView | None:
    """Build the view of one outbox row (``dockyard.models.Event`` columns; ``payload`` as stored or parsed).

    Returns None for outbox types webhooks do not see. ``platforms`` and ``info`` come from the repository and the
    manifest, which the caller reads (for a deleted manifest there are no platforms any more).
    """
    event = webhook_event_for(event_type)
    if event is None:
        return None
    extra: Mapping[str, Any] = json.loads(payload) if isinstance(payload, str) else (payload or {})
    tags = tuple(str(t) for t in extra.get("tags") or ())
    if not tags and tag is not None:
        tags = (tag,)
    size = extra.get("size")
    namespace = namespace_of(repository)
    return EventView(
        event_id=event_id,
        event=event,
        occurred_at=occurred_at,
        repository=repository,
        namespace=namespace,
        name=short_name_of(repository),
        actor=actor,
        tag=tag if tag is not None else (tags[0] if tags else None),
        tags=tags,
        digest=digest,
        media_type=media_type,
        size=int(size) if isinstance(size, int) else None,
        platforms=platforms,
        info=info or RepositoryInfo(owner=namespace),
        base_url=base_url,
        request=request,
    )


SAMPLE_DIGEST = "sha256:" + "0" * 63 + "1"


def sample_push(
    repository: str, *, event_id: str, base_url: str = "", actor: str | None = None, info: RepositoryInfo | None = None
) -> EventView:
    """A made-up ``push`` of ``<repository>:latest`` for the "test" action (the digest is obviously fake)."""
    namespace = namespace_of(repository)
    return EventView(
        event_id=event_id,
        event=PUSH,
        occurred_at=datetime.now(UTC),
        repository=repository,
        namespace=namespace,
        name=short_name_of(repository),
        actor=actor,
        tag="latest",
        tags=("latest",),
        digest=SAMPLE_DIGEST,
        media_type="application/vnd.oci.image.index.v1+json",
        size=0,
        platforms=(Platform("linux", "amd64"), Platform("linux", "arm64", "v8")),
        info=info or RepositoryInfo(owner=namespace),
        base_url=base_url,
        details={"sample": True},
    )
