"""Shapes of the webhook routes of the Hub API: the request bodies (constrained, so that the OpenAPI document says
what is accepted), the webhook and delivery responses, and their conversions from ``dockyard.webhooks.snapshots``.

The signing secret appears only in ``CreatedWebhook`` and ``WebhookSecret``: the responses of creating a webhook
and of regenerating its secret.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from dockyard.http.api.schemas.common import NO_NUL, PRINTABLE, PRINTABLE_OR_EMPTY, Timestamp
from dockyard.webhooks.snapshots import AttemptView, DeliveryView, WebhookView

# Kept equal to the event table (``dockyard.webhooks.event_table``: every event, the selectable formats; a test
# checks); spelled out so that the OpenAPI document lists them.
EventName = Literal[
    "push",
    "pull",
    "tag_deleted",
    "manifest_deleted",
    "repository_created",
    "repository_deleted",
    "build_queued",
    "build_started",
    "build_succeeded",
    "build_failed",
    "build_building",
    "build_pushing",
    "build_signing",
    "build_cancelled",
    "replication_completed",
    "replication_failed",
    "signature_added",
    "policy_violation",
    "scan_completed",
    "vulnerability_found",
    "quota_warning",
    "quota_exceeded",
]
PayloadFormat = Literal["dockerhub", "cloudevents", "dockyard"]
CallbackState = Literal["success", "failure", "error"]

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UUID_OR_EMPTY = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
HTTP_URL = r"^[hH][tT][tT][pP][sS]?://[^\s\x00-\x1f\x7f]+$"
MAX_EVENTS = 32

SIGNATURE_HELP = (
    "Every delivery carries `X-Dockyard-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw request body keyed "
    "with this secret, plus `X-Dockyard-Delivery` (one id per delivery, unchanged on retries: drop duplicates) "
    "and `X-Dockyard-Event`. To verify, compute `hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()` "
    "over the bytes received (before parsing the JSON) and compare it with the header's hex in constant time "
    "(`hmac.compare_digest`). The secret is not shown again; regenerate it with "
    "`POST /api/v2/webhooks/{uuid}/secret` if it is lost."
)

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=PRINTABLE, description="a label for people")]
Url = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2048,
        pattern=HTTP_URL,
        description="where deliveries are POSTed: an http(s) URL with a host and no credentials",
        examples=["https://ci.example.com/hooks/dockyard"],
    ),
]
Events = Annotated[
    list[EventName],
    Field(min_length=1, max_length=MAX_EVENTS, description="the events to deliver"),
]
TagFilter = Annotated[
    str,
    Field(
        max_length=255,
        pattern=PRINTABLE_OR_EMPTY,
        description="a glob on the tag (`v*`, `release-?`); events of other tags are not delivered; empty: all",
    ),
]
AuthHeader = Annotated[
    str,
    Field(
        max_length=4096,
        pattern=PRINTABLE_OR_EMPTY,
        description='one static header sent with every delivery, as `"Name: value"` (stored sealed, never shown '
        "again; attempts show it redacted)",
        examples=["Authorization: Bearer s3cr3t"],
    ),
]
After = Annotated[
    str,
    Field(
        pattern=UUID_OR_EMPTY,
        description="the uuid of a webhook of the same repository or namespace: this one fires only once that "
        "webhook's delivery of the same event is called back with `success` (a Docker Hub callback chain)",
    ),
]


def _default_events() -> list[EventName]:
    return ["push"]


class CreateWebhook(BaseModel):
    name: Name
    url: Url
    events: Events = Field(default_factory=_default_events)
    tag_filter: TagFilter | None = None
    payload_format: PayloadFormat = Field(
        default="dockerhub",
        description="`dockerhub` (Docker Hub's payload, with `callback_url`), `cloudevents` (CloudEvents 1.0, "
        "structured JSON) or `dockyard` (every detail of the event)",
    )
    auth_header: AuthHeader | None = None
    after: After | None = None
    active: bool = Field(default=True, description="false: keep the webhook but deliver nothing")


class UpdateWebhook(BaseModel):
    """Fields left out (or null) stay as they are; `tag_filter`, `auth_header` and `after` are cleared with an
    empty string (or null). Setting `active` to true forgets why the webhook was disabled and its failures."""

    name: Name | None = None
    url: Url | None = None
    events: Events | None = None
    tag_filter: TagFilter | None = None
    payload_format: PayloadFormat | None = None
    auth_header: AuthHeader | None = None
    after: After | None = None
    active: bool | None = None

    def cleared(self, field: str) -> str | None:
        """The value to pass the service for a clearable field: "" when the body set it to null."""
        value: str | None = getattr(self, field)
        if value is None and field in self.model_fields_set:
            return ""
        return value


class Webhook(BaseModel):
    id: str = Field(description="the webhook's uuid")
    name: str
    namespace: str | None
    repository: str | None = Field(description="full registry name (`org/app`); null: every repository")
    url: str
    events: list[str]
    tag_filter: str | None
    payload_format: str
    active: bool
    disabled_reason: str | None = Field(description="why the server disabled it (e.g. the receiver kept failing)")
    after: str | None
    has_auth_header: bool
    consecutive_failures: int
    failing_since: Timestamp | None
    created_by: str
    created_at: Timestamp
    updated_at: Timestamp


class CreatedWebhook(Webhook):
    secret: str = Field(description="the signing secret, shown in this response only. " + SIGNATURE_HELP)


class WebhookSecret(BaseModel):
    id: str
    secret: str = Field(description="the new signing secret (the old one stops at once); shown in this response only")


class Callback(BaseModel):
    """What the receiver reported through the delivery's callback URL."""

    state: str
    description: str | None
    context: str | None
    target_url: str | None


class DeliveryRequest(BaseModel):
    content_type: str
    body: str = Field(description="the JSON text sent (the exact bytes, UTF-8)")


class AttemptResponse(BaseModel):
    status: int
    headers: dict[str, Any]
    body: str = Field(description="the start of the response body (at most 4 KiB)")


class Attempt(BaseModel):
    number: int
    started_at: Timestamp
    duration_ms: int
    request_headers: dict[str, Any] = Field(description="as sent; the static auth header is redacted")
    response: AttemptResponse | None = Field(description="null when no response came (connection error, refused)")
    error: str | None
    outcome: str = Field(description="delivered, retry, failed, gone or refused")
    next_attempt_at: Timestamp | None


class Delivery(BaseModel):
    id: str = Field(description="the delivery's uuid: `X-Dockyard-Delivery`")
    webhook: str
    event_id: str
    event: str
    state: str = Field(
        description="pending, delivered, failed, dead, skipped; waiting / chain_stopped in callback chains"
    )
    attempts: int
    created_at: Timestamp
    completed_at: Timestamp | None
    last_error: str | None
    redelivery_of: str | None = Field(description="the delivery this one sent again")
    parent: str | None = Field(description="the delivery of the preceding webhook in a callback chain")
    callback: Callback | None
    request: DeliveryRequest


class DeliveryDetail(Delivery):
    history: list[Attempt] = Field(description="every attempt, oldest first")


class CallbackReport(BaseModel):
    """Docker Hub's callback: what the receiver of a delivery reports about the work it did."""

    state: CallbackState
    description: str | None = Field(default=None, max_length=255, pattern=NO_NUL)
    context: str | None = Field(default=None, max_length=100, pattern=NO_NUL)
    target_url: str | None = Field(
        default=None, max_length=2048, pattern=HTTP_URL, description="where to see the results"
    )


class Acknowledged(BaseModel):
    """An empty object (Docker Hub answers callbacks with `{}`)."""


def webhook_model(view: WebhookView) -> Webhook:
    return Webhook(**_webhook_fields(view))


def created_webhook(view: WebhookView, secret: str) -> CreatedWebhook:
    return CreatedWebhook(**_webhook_fields(view), secret=secret)


def _webhook_fields(view: WebhookView) -> dict[str, Any]:
    return {
        "id": view.uuid,
        "name": view.name,
        "namespace": view.namespace,
        "repository": view.repository,
        "url": view.url,
        "events": list(view.events),
        "tag_filter": view.tag_filter,
        "payload_format": view.payload_format,
        "active": view.active,
        "disabled_reason": view.disabled_reason,
        "after": view.after,
        "has_auth_header": view.has_auth_header,
        "consecutive_failures": view.consecutive_failures,
        "failing_since": view.failing_since,
        "created_by": view.created_by,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
    }


def _delivery_fields(view: DeliveryView) -> dict[str, Any]:
    callback = view.callback
    return {
        "id": view.uuid,
        "webhook": view.webhook,
        "event_id": view.event_id,
        "event": view.event,
        "state": view.state,
        "attempts": view.attempts,
        "created_at": view.created_at,
        "completed_at": view.completed_at,
        "last_error": view.last_error,
        "redelivery_of": view.redelivery_of,
        "parent": view.parent,
        "callback": None
        if callback is None
        else Callback(
            state=callback.state,
            description=callback.description,
            context=callback.context,
            target_url=callback.target_url,
        ),
        "request": DeliveryRequest(content_type=view.content_type, body=view.request_body),
    }


def delivery_model(view: DeliveryView) -> Delivery:
    return Delivery(**_delivery_fields(view))


def delivery_detail(view: DeliveryView) -> DeliveryDetail:
    return DeliveryDetail(**_delivery_fields(view), history=[attempt_model(a) for a in view.history])


def attempt_model(view: AttemptView) -> Attempt:
    response = None
    if view.response_status is not None:
        response = AttemptResponse(
            status=view.response_status, headers=dict(view.response_headers), body=view.response_body
        )
    return Attempt(
        number=view.number,
        started_at=view.started_at,
        duration_ms=view.duration_ms,
        request_headers=dict(view.request_headers),
        response=response,
        error=view.error,
        outcome=view.outcome,
        next_attempt_at=view.next_attempt_at,
    )
