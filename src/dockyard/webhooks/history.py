"""A webhook's delivery history: its deliveries (newest first), one delivery with its attempts, and queueing a
delivery again — a past body as a new delivery, or a sample event. Each function works inside the caller's unit of
work on a webhook row the caller has already authorized (``WebhookService``, which also audits)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.paging import Page, PageRequest
from dockyard.errors import NotFound
from dockyard.models import WebhookAttempt, WebhookDelivery
from dockyard.webhooks.dispatch import render, sample_view
from dockyard.webhooks.queueing import enqueue_delivery, new_delivery
from dockyard.webhooks.snapshots import AttemptView, CallbackView, DeliveryView


async def list_deliveries(conn: AsyncConnection, hook: Row[Any], page: PageRequest) -> Page[DeliveryView]:
    where = WebhookDelivery.webhook_id == hook.id
    total = (await conn.execute(select(func.count()).select_from(WebhookDelivery).where(where))).scalar_one()
    rows = (
        await conn.execute(
            select(WebhookDelivery)
            .where(where)
            .order_by(WebhookDelivery.id.desc())
            .offset(page.offset)
            .limit(page.page_size)
        )
    ).all()
    return Page([await delivery_view(conn, hook.uuid, row, history=False) for row in rows], total, page)


async def get_delivery(conn: AsyncConnection, hook: Row[Any], delivery_uuid: str) -> DeliveryView:
    """One delivery of ``hook`` with its attempts. Raises NotFound."""
    row = await find_delivery(conn, hook.id, delivery_uuid)
    return await delivery_view(conn, hook.uuid, row, history=True)


async def redeliver(conn: AsyncConnection, hook: Row[Any], delivery_uuid: str) -> DeliveryView:
    """Queue a past delivery's body again, as a new delivery (its own id, so receivers do not drop it)."""
    old = await find_delivery(conn, hook.id, delivery_uuid)
    new_id = await new_delivery(
        conn,
        hook.id,
        event_id=old.event_id,
        event=old.event,
        body=old.body,
        content_type=old.content_type,
        redelivery_of=old.id,
    )
    await enqueue_delivery(conn, hook.id, new_id)
    return await _queued(conn, hook, new_id)


async def send_test(conn: AsyncConnection, hook: Row[Any], base_url: str) -> DeliveryView:
    """Queue a sample ``push`` event (tag ``latest``) for ``hook``, in its payload format."""
    repository = hook.repository or f"{hook.namespace}/sample"
    view = sample_view(repository, base_url)
    rendered, token_hash = render(view, hook.payload_format, base_url)
    delivery_id = await new_delivery(
        conn,
        hook.id,
        event_id=view.event_id,
        event=view.event,
        body=rendered.body.decode(),
        content_type=rendered.content_type,
        callback_token=token_hash,
    )
    await enqueue_delivery(conn, hook.id, delivery_id)
    return await _queued(conn, hook, delivery_id)


async def _queued(conn: AsyncConnection, hook: Row[Any], delivery_id: int) -> DeliveryView:
    row = (await conn.execute(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id))).one()
    return await delivery_view(conn, hook.uuid, row, history=False)


async def find_delivery(conn: AsyncConnection, webhook_id: int, delivery_uuid: str) -> Row[Any]:
    row = (
        await conn.execute(
            select(WebhookDelivery).where(
                WebhookDelivery.uuid == delivery_uuid, WebhookDelivery.webhook_id == webhook_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("delivery", "delivery not found", {"uuid": delivery_uuid[:64]})
    return row


async def delivery_view(conn: AsyncConnection, webhook_uuid: str, row: Row[Any], *, history: bool) -> DeliveryView:
    """A delivery as the API shows it; ``history`` adds its attempts (request and response of each)."""
    uuids: dict[int, str] = {}
    wanted = [i for i in (row.redelivery_of, row.parent_id) if i is not None]
    if wanted:
        found = await conn.execute(
            select(WebhookDelivery.id, WebhookDelivery.uuid).where(WebhookDelivery.id.in_(wanted))
        )
        uuids = {row.id: row.uuid for row in found}
    attempts: tuple[AttemptView, ...] = ()
    if history:
        rows = (
            await conn.execute(
                select(WebhookAttempt).where(WebhookAttempt.delivery_id == row.id).order_by(WebhookAttempt.number)
            )
        ).all()
        attempts = tuple(
            AttemptView(
                number=a.number,
                started_at=a.started_at,
                duration_ms=a.duration_ms,
                request_headers=json.loads(a.request_headers),
                response_status=a.response_status,
                response_headers=json.loads(a.response_headers),
                response_body=a.response_body,
                error=a.error,
                outcome=a.outcome,
                next_attempt_at=a.next_attempt_at,
            )
            for a in rows
        )
    callback = None
    if row.callback_state is not None:
        callback = CallbackView(
            row.callback_state, row.callback_description, row.callback_context, row.callback_target_url
        )
    return DeliveryView(
        uuid=row.uuid,
        webhook=webhook_uuid,
        event_id=row.event_id,
        event=row.event,
        state=row.state,
        attempts=row.attempts,
        created_at=row.created_at,
        completed_at=row.completed_at,
        last_error=row.last_error,
        redelivery_of=uuids.get(row.redelivery_of) if row.redelivery_of is not None else None,
        parent=uuids.get(row.parent_id) if row.parent_id is not None else None,
        callback=callback,
        request_body=row.body,
        content_type=row.content_type,
        history=attempts,
    )
