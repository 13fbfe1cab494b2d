"""Webhooks: per-repository or per-namespace HTTP callbacks, every delivery of an event to one of them, and
every attempt of a delivery (request and response as sent and received)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, utcnow


class Webhook(Base):
    """A receiver. ``repository`` NULL: every repository of ``namespace``. ``namespace`` NULL: a static
    distribution-style notification endpoint from the settings (every repository of the server)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    namespace: Mapped[str | None] = mapped_column(ascii_string(255), nullable=True)
    repository: Mapped[str | None] = mapped_column(ascii_string(255), nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[str] = mapped_column(Text)  # JSON list of event names
    tag_filter: Mapped[str | None] = mapped_column(String(255), nullable=True)  # glob on the tag
    payload_format: Mapped[str] = mapped_column(String(16))  # dockerhub | cloudevents | dockyard | distribution
    secret: Mapped[str] = mapped_column(Text)  # sealed with the server secret (the HMAC key must be readable)
    auth_header: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed "Name: value", optional
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    after_webhook_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhooks.id", ondelete="SET NULL"), nullable=True
    )  # a chain: fires only when that webhook's delivery of the same event is called back with "success"
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_webhooks_scope", "namespace", "repository"),)


class WebhookDelivery(Base):
    """One event for one webhook. ``state``: pending → delivered | failed | dead | skipped; chained deliveries
    wait in ``waiting`` until their parent's callback, and end in ``chain_stopped`` when it says anything but
    success."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)  # X-Dockyard-Delivery
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)  # the exact JSON sent (UTF-8), for redelivery
    content_type: Mapped[str] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="SET NULL"), nullable=True
    )
    redelivery_of: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    callback_token: Mapped[str | None] = mapped_column(String(64), nullable=True, unique=True)  # SHA-256 hex
    callback_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    callback_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    callback_description: Mapped[str | None] = mapped_column(String(255), nullable=True)
    callback_context: Mapped[str | None] = mapped_column(String(100), nullable=True)
    callback_target_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
        Index("ix_webhook_deliveries_parent", "parent_id"),
    )


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    request_headers: Mapped[str] = mapped_column(Text)  # JSON; the static auth header is redacted
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_headers: Mapped[str] = mapped_column(Text, default="{}")
    response_body: Mapped[str] = mapped_column(Text, default="")  # first 4 KiB, decoded leniently
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | retry | failed | gone | refused
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
