"""Docker Hub's callback chain: a receiver POSTs ``{state, description, context, target_url}`` to its delivery's
``callback_url`` (an unguessable token, stored hashed, expiring). ``success`` releases the deliveries of the
webhooks chained after it; any other state stops them (and everything chained after those)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.models import WebhookDelivery
from dockyard.models.base import utcnow
from dockyard.webhooks.queueing import DEFAULT_HORIZON, enqueue_delivery

STATES = ("success", "failure", "error")


def _validate(state: str, description: str | None, context: str | None, target_url: str | None) -> None:
    if state not in STATES:
        raise Invalid("delivery", f"state must be one of {list(STATES)}")
    if description is not None and len(description) > 255:
        raise Invalid("delivery", "description is at most 255 characters")
    if context is not None and len(context) > 100:
        raise Invalid("delivery", "context is at most 100 characters")
    if target_url is not None:
        try:
            parts = urlsplit(target_url)
            hostname, _ = parts.hostname, parts.port  # parsed lazily: a bad bracket or port raises here
        except ValueError:  # "Invalid IPv6 URL" and the like
            raise Invalid("delivery", "target_url must be an http(s) URL") from None
        if parts.scheme not in ("http", "https") or not hostname or len(target_url) > 2048:
            raise Invalid("delivery", "target_url must be an http(s) URL")


async def receive_callback(
    db: Database,
    token: str,
    *,
    state: str,
    description: str | None = None,
    context: str | None = None,
    target_url: str | None = None,
    wake: Callable[[], None] | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
) -> None:
    """Record the callback of the delivery ``token`` belongs to. Raises NotFound (unknown or expired token),
    Conflict (already called back) or Invalid."""
    _validate(state, description, context, target_url)
    if not token or len(token) > 200 or not token.isprintable():
        raise NotFound("delivery", "unknown or expired callback")
    digest = hashlib.sha256(token.encode()).hexdigest()
    released = False
    async with db.write() as conn:
        row = (
            await conn.execute(
                select(WebhookDelivery.id, WebhookDelivery.callback_state, WebhookDelivery.callback_expires_at)
                .where(WebhookDelivery.callback_token == digest)
                .with_for_update()
            )
        ).first()
        if row is None or (row.callback_expires_at is not None and row.callback_expires_at < utcnow()):
            raise NotFound("delivery", "unknown or expired callback")
        if row.callback_state is not None:
            raise Conflict("delivery", "this delivery was already called back")
        await conn.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == row.id)
            .values(
                callback_state=state,
                callback_description=description,
                callback_context=context,
                callback_target_url=target_url,
            )
        )
        if state == "success":
            released = await _release_children(conn, row.id, horizon)
        else:
            await _stop_chain(conn, row.id, f"the previous webhook's callback said {state}")
    if released and wake is not None:
        wake()


async def _release_children(conn: AsyncConnection, parent_id: int, horizon: timedelta) -> bool:
    children = (
        await conn.execute(
            select(WebhookDelivery.id, WebhookDelivery.webhook_id).where(
                WebhookDelivery.parent_id == parent_id, WebhookDelivery.state == "waiting"
            )
        )
    ).all()
    for child in children:
        await conn.execute(update(WebhookDelivery).where(WebhookDelivery.id == child.id).values(state="pending"))
        await enqueue_delivery(conn, child.webhook_id, child.id, horizon)
    return bool(children)


async def _stop_chain(conn: AsyncConnection, parent_id: int, reason: str) -> None:
    pending = [parent_id]
    while pending:
        current = pending.pop()
        children = (
            (
                await conn.execute(
                    select(WebhookDelivery.id).where(
                        WebhookDelivery.parent_id == current, WebhookDelivery.state == "waiting"
                    )
                )
            )
            .scalars()
            .all()
        )
        for child in children:
            await conn.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == child)
                .values(state="chain_stopped", last_error=reason[:500], completed_at=utcnow())
            )
            pending.append(child)
