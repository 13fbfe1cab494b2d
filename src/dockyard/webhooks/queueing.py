"""Deliveries as rows and jobs: a delivery row per (event, webhook), and a ``webhooks.deliver`` job for it with
the webhook's ordering key, so that one webhook's deliveries go out one at a time in event order (a
``tag_deleted`` never overtakes the ``push`` before it) while different webhooks proceed independently."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.jobs.queue import enqueue
from dockyard.models import WebhookDelivery
from dockyard.models.base import utcnow

DELIVER = "webhooks.deliver"
DEFAULT_HORIZON = timedelta(hours=24)


def ordering_key(webhook_id: int) -> str:
    return f"webhook:{webhook_id}"


async def new_delivery(
    conn: AsyncConnection,
    webhook_id: int,
    *,
    event_id: str,
    event: str,
    body: str,
    content_type: str,
    state: str = "pending",
    parent_id: int | None = None,
    redelivery_of: int | None = None,
    callback_token: str | None = None,
    callback_expires_at: datetime | None = None,
    delivery_uuid: str | None = None,
) -> int:
    result = await conn.execute(
        insert(WebhookDelivery)
        .values(
            uuid=delivery_uuid or str(uuid.uuid4()),
            webhook_id=webhook_id,
            event_id=event_id,
            event=event,
            state=state,
            body=body,
            content_type=content_type,
            attempts=0,
            parent_id=parent_id,
            redelivery_of=redelivery_of,
            callback_token=callback_token,
            callback_expires_at=callback_expires_at,
            created_at=utcnow(),
        )
        .returning(WebhookDelivery.id)
    )
    return int(result.scalar_one())


async def enqueue_delivery(
    conn: AsyncConnection, webhook_id: int, delivery_id: int, horizon: timedelta = DEFAULT_HORIZON
) -> None:
    await enqueue(
        conn,
        DELIVER,
        {"delivery": delivery_id},
        ordering_key=ordering_key(webhook_id),
        expires_at=utcnow() + horizon,
        max_attempts=1000,
    )
