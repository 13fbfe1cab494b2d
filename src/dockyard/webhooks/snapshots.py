"""What the webhook services return: snapshots of webhooks, deliveries and attempts (never the secret, which is
shown once when a webhook is created or its secret regenerated)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.webhooks.event_table import selectable_formats

PAYLOAD_FORMATS = selectable_formats()  # what a user may choose (the event table; ``distribution`` is settings-only)


@dataclass(frozen=True, slots=True)
class WebhookView:
    uuid: str
    name: str
    namespace: str | None
    repository: str | None  # full name, or None for every repository of the namespace
    url: str
    events: tuple[str, ...]
    tag_filter: str | None
    payload_format: str
    active: bool
    disabled_reason: str | None
    after: str | None  # uuid of the webhook this one follows in a callback chain
    has_auth_header: bool
    consecutive_failures: int
    failing_since: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptView:
    number: int
    started_at: datetime
    duration_ms: int
    request_headers: dict[str, Any]
    response_status: int | None
    response_headers: dict[str, Any]
    response_body: str
    error: str | None
    outcome: str
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class CallbackView:
    state: str
    description: str | None
    context: str | None
    target_url: str | None


@dataclass(frozen=True, slots=True)
class DeliveryView:
    uuid: str
    webhook: str
    event_id: str
    event: str
    state: str
    attempts: int
    created_at: datetime
    completed_at: datetime | None
    last_error: str | None
    redelivery_of: str | None
    parent: str | None
    callback: CallbackView | None
    request_body: str
    content_type: str
    history: tuple[AttemptView, ...] = ()
