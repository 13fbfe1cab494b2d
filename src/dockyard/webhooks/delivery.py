"""One attempt at one delivery (the ``webhooks.deliver`` job): sign, send, record the attempt, decide.

Idempotent: a delivery that is no longer ``pending`` is left alone, so a job that runs again after its worker died
sends at most once more — with the same ``X-Dockyard-Delivery`` id, which receivers use to drop duplicates.

Outcomes (``sender.deliver`` classifies the response): delivered → done; 410 Gone → the webhook is deactivated;
other 4xx, 3xx and refused addresses → failed, no retry; 408, 429, 5xx and network errors → retried with
exponential backoff and jitter (``Retry-After`` honoured) until ``webhook_retry_horizon_seconds`` after the event,
then ``dead``. A webhook whose deliveries keep failing for ``webhook_disable_after_seconds`` and
``webhook_disable_after_failures`` deliveries in a row is disabled, with the reason shown to its owner.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox
from dockyard.db.engine import Database
from dockyard.events.audit import record_audit
from dockyard.jobs.handlers import JobContext, Retry, backoff_delay
from dockyard.models import Webhook, WebhookAttempt, WebhookDelivery
from dockyard.models.base import utcnow
from dockyard.settings import Settings
from dockyard.webhooks.hmac import delivery_headers
from dockyard.webhooks.sender import DeliveryRequest, DeliveryResult, deliver
from dockyard.webhooks.ssrf import AddressPolicy

REDACTED = "[redacted]"


class DeliveryWorker:
    def __init__(self, db: Database, settings: Settings, client: httpx.AsyncClient) -> None:
        self.db = db
        self.settings = settings
        self.client = client
        self.box = SecretBox(settings.secret_key)
        self.policy = AddressPolicy(settings.webhook_allowed_hosts)

    async def handle(self, job: JobContext) -> None:
        delivery_id = int(job.payload["delivery"])
        async with self.db.read(consistent=True) as conn:
            row = (
                await conn.execute(
                    select(WebhookDelivery, Webhook.url, Webhook.secret, Webhook.auth_header, Webhook.active)
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(WebhookDelivery.id == delivery_id)
                )
            ).first()
        if row is None or row.state != "pending":
            return
        if not row.active:
            await self._finish(delivery_id, "skipped", "the webhook is inactive")
            return
        body = row.body.encode()
        extra: dict[str, str] = {}
        if row.auth_header is not None:
            # One "Name: value" line (the API's auth_header), or several (a notification endpoint's headers).
            for line in self.box.open(row.auth_header).decode().splitlines():
                name, _, value = line.partition(":")
                if name.strip():
                    extra[name.strip()] = value.strip()
        hidden = {name.lower() for name in extra}
        headers = delivery_headers(
            body=body,
            content_type=row.content_type,
            delivery_id=row.uuid,
            event=row.event,
            secret=self.box.open(row.secret),
            extra=extra,
        )
        timeout = self.settings.webhook_timeout_seconds
        result = await deliver(
            self.client,
            DeliveryRequest(row.url, body, headers),
            self.policy,
            connect_timeout=min(5.0, timeout),
            read_timeout=timeout,
        )
        sent = {k: (REDACTED if k.lower() in hidden else v) for k, v in headers.items()}
        await self._record(job, row, result, sent)

    async def _record(self, job: JobContext, row: Any, result: DeliveryResult, sent: dict[str, str]) -> None:
        now = utcnow()
        retry_in: float | None = None
        state = {"delivered": "delivered", "gone": "failed", "failed": "failed"}.get(result.outcome)
        if result.outcome == "retry":
            retry_in = result.retry_after
            if retry_in is None:
                retry_in = backoff_delay(
                    job.attempt,
                    base=self.settings.jobs_backoff_base_seconds,
                    cap=self.settings.jobs_backoff_cap_seconds,
                )
            if job.expires_at is not None and now + timedelta(seconds=retry_in) > job.expires_at:
                state, retry_in = "dead", None
        next_at = now + timedelta(seconds=retry_in) if retry_in is not None else None
        async with self.db.write() as conn:
            current = (
                await conn.execute(select(WebhookDelivery.state).where(WebhookDelivery.id == row.id).with_for_update())
            ).scalar_one_or_none()
            if current != "pending":
                return  # someone else finished it meanwhile (a redelivered job that ran twice)
            attempts = row.attempts + 1
            await conn.execute(
                insert(WebhookAttempt).values(
                    delivery_id=row.id,
                    number=attempts,
                    started_at=now - timedelta(milliseconds=result.duration_ms),
                    duration_ms=int(result.duration_ms),
                    request_headers=json.dumps(sent),
                    response_status=result.status,
                    response_headers=json.dumps(dict(result.headers)),
                    response_body=result.body[:4096].decode("utf-8", errors="replace"),
                    error=(result.error or None) and result.error[:500],
                    outcome=result.outcome,
                    next_attempt_at=next_at,
                )
            )
            values: dict[str, Any] = {"attempts": attempts, "last_error": _summary(result)}
            if state is not None:
                values.update(state=state, completed_at=now)
            await conn.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(**values))
            await self._webhook_health(conn, row.webhook_id, result, state, now)
        if retry_in is not None:
            raise Retry(retry_in, _summary(result) or "retry")

    async def _webhook_health(
        self, conn: AsyncConnection, webhook_id: int, result: DeliveryResult, state: str | None, now: datetime
    ) -> None:
        hook = (
            await conn.execute(
                select(
                    Webhook.namespace,
                    Webhook.repository,
                    Webhook.uuid,
                    Webhook.failing_since,
                    Webhook.consecutive_failures,
                ).where(Webhook.id == webhook_id)
            )
        ).first()
        if hook is None:
            return
        if result.outcome == "delivered":
            await conn.execute(
                update(Webhook).where(Webhook.id == webhook_id).values(consecutive_failures=0, failing_since=None)
            )
            return
        reason = None
        if result.outcome == "gone":
            reason = "the receiver answered 410 Gone"
        if state is None:
            return  # still retrying: health is judged per delivery, when it ends
        failures = hook.consecutive_failures + 1
        since = hook.failing_since or now
        if (
            reason is None
            and failures >= self.settings.webhook_disable_after_failures
            and (now - since).total_seconds() >= self.settings.webhook_disable_after_seconds
        ):
            reason = f"every delivery failed for {int((now - since).total_seconds() // 3600)} h ({failures} in a row)"
        values: dict[str, Any] = {"consecutive_failures": failures, "failing_since": since}
        if reason is not None:
            values.update(active=False, disabled_reason=f"{reason}; last error: {_summary(result)}"[:500])
        await conn.execute(update(Webhook).where(Webhook.id == webhook_id).values(**values))
        if reason is not None and hook.namespace is not None:
            await record_audit(
                conn,
                hook.namespace,
                "webhook.disable",
                actor="dockyard",
                target=hook.repository or hook.namespace,
                data={"webhook": hook.uuid, "reason": reason},
            )

    async def _finish(self, delivery_id: int, state: str, reason: str) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending")
                .values(state=state, last_error=reason, completed_at=utcnow())
            )


def _summary(result: DeliveryResult) -> str | None:
    if result.error:
        return result.error[:500]
    if result.status is not None and result.outcome != "delivered":
        return f"HTTP {result.status}"
    return None
