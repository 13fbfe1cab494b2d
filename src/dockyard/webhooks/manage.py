"""Managing webhooks: create (the signing secret is shown once), list, read, change, delete, regenerate the secret,
read the delivery history, redeliver a past delivery and send a test event.

Who may: a namespace's owners manage its namespace-wide webhooks; holders of admin on a repository manage that
repository's webhooks (namespace owners and site administrators hold it). Webhooks the caller may not manage are
``NotFound``.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox
from dockyard.authz.permissions import Level, namespace_role, repository_level
from dockyard.authz.principal import Principal
from dockyard.core.names import validate_name
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Account, Repository, Webhook, WebhookAttempt, WebhookDelivery
from dockyard.models.base import utcnow
from dockyard.webhooks.dispatch import render, sample_view
from dockyard.webhooks.events import WEBHOOK_EVENTS
from dockyard.webhooks.queueing import enqueue_delivery, new_delivery
from dockyard.webhooks.signing import new_secret
from dockyard.webhooks.views import PAYLOAD_FORMATS, AttemptView, CallbackView, DeliveryView, WebhookView

MAX_WEBHOOKS_PER_SCOPE = 100


def _validate_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise Invalid("request", "url must be an http(s) URL with a host, at most 2048 characters", {"url": url[:200]})
    if parts.username or parts.password:
        raise Invalid("request", "put credentials in auth_header, not in the URL")
    return url


def _validate_events(events: Sequence[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(events or ["push"]))
    unknown = [e for e in chosen if e not in WEBHOOK_EVENTS]
    if unknown or not chosen:
        raise Invalid("request", f"unknown events {unknown}; known: {sorted(WEBHOOK_EVENTS)}")
    return chosen


def _validate_format(payload_format: str) -> str:
    if payload_format not in PAYLOAD_FORMATS:
        raise Invalid("request", f"payload_format must be one of {list(PAYLOAD_FORMATS)}")
    return payload_format


def _validate_tag_filter(pattern: str | None) -> str | None:
    if pattern is None or pattern == "":
        return None
    if len(pattern) > 255 or not pattern.isprintable():
        raise Invalid("request", "tag_filter must be a printable glob of at most 255 characters")
    fnmatchcase("probe", pattern)  # any string is a valid glob; this only proves it evaluates
    return pattern


def _validate_auth_header(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    name, sep, content = value.partition(":")
    if not sep or not name.strip() or "\n" in value or "\r" in value or len(value) > 4096:
        raise Invalid("request", 'auth_header must be one "Name: value" header line')
    if name.strip().lower() in {"host", "content-type", "content-length"} or name.lower().startswith("x-dockyard-"):
        raise Invalid("request", f"auth_header may not set {name.strip()}")
    return f"{name.strip()}: {content.strip()}"


class WebhookService:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    # -- authorization --------------------------------------------------------------------------------------------

    async def _require_scope(
        self, conn: AsyncConnection, actor: Principal, namespace: str, repository: str | None
    ) -> None:
        if repository is None:
            if actor.superuser or await namespace_role(conn, actor, namespace) == "owner":
                return
            raise NotFound("account", "no such namespace, or you may not manage its webhooks", {"name": namespace})
        if not actor.superuser and await repository_level(conn, actor, repository) < Level.ADMIN:
            raise NotFound("repository", "no such repository, or you may not manage its webhooks", {"name": repository})
        exists = (await conn.execute(select(Repository.id).where(Repository.name == repository))).first()
        if exists is None:
            raise NotFound("repository", "repository not found", {"name": repository})

    async def _webhook(self, conn: AsyncConnection, actor: Principal, webhook_uuid: str) -> Row[Any]:
        row = (await conn.execute(select(Webhook).where(Webhook.uuid == webhook_uuid))).first()
        if row is None or row.namespace is None:
            raise NotFound("request", "webhook not found", {"uuid": webhook_uuid[:64]})
        try:
            await self._require_scope(conn, actor, row.namespace, row.repository)
        except NotFound as exc:
            raise NotFound("request", "webhook not found", {"uuid": webhook_uuid[:64]}) from exc
        return row

    async def _namespace_exists(self, conn: AsyncConnection, namespace: str) -> None:
        found = (await conn.execute(select(Account.id).where(Account.name == namespace))).first()
        if found is None and namespace != "library":
            raise NotFound("account", "namespace not found", {"name": namespace})

    # -- views ----------------------------------------------------------------------------------------------------

    async def _view(self, conn: AsyncConnection, row: Row[Any]) -> WebhookView:
        after = None
        if row.after_webhook_id is not None:
            after = (
                await conn.execute(select(Webhook.uuid).where(Webhook.id == row.after_webhook_id))
            ).scalar_one_or_none()
        return WebhookView(
            uuid=row.uuid,
            name=row.name,
            namespace=row.namespace,
            repository=row.repository,
            url=row.url,
            events=tuple(json.loads(row.events)),
            tag_filter=row.tag_filter,
            payload_format=row.payload_format,
            active=row.active,
            disabled_reason=row.disabled_reason,
            after=after,
            has_auth_header=row.auth_header is not None,
            consecutive_failures=row.consecutive_failures,
            failing_since=row.failing_since,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def _resolve_after(
        self, conn: AsyncConnection, after: str | None, namespace: str, repository: str | None, own_id: int | None
    ) -> int | None:
        if after is None or after == "":
            return None
        row = (
            await conn.execute(
                select(Webhook.id, Webhook.namespace, Webhook.repository, Webhook.after_webhook_id).where(
                    Webhook.uuid == after
                )
            )
        ).first()
        if row is None or row.namespace != namespace or row.repository != repository:
            raise Invalid("request", "after must name a webhook of the same repository or namespace")
        # Walk up the chain: it must not come back to this webhook.
        seen: set[int] = set()
        current: Any = row
        while current is not None:
            if (own_id is not None and current.id == own_id) or current.id in seen:
                raise Invalid("request", "after would make the callback chain a cycle")
            seen.add(current.id)
            if current.after_webhook_id is None:
                break
            current = (
                await conn.execute(
                    select(Webhook.id, Webhook.namespace, Webhook.repository, Webhook.after_webhook_id).where(
                        Webhook.id == current.after_webhook_id
                    )
                )
            ).first()
        return int(row.id)

    # -- CRUD -----------------------------------------------------------------------------------------------------

    async def create(
        self,
        actor: Principal,
        namespace: str,
        repository: str | None,
        *,
        name: str,
        url: str,
        events: Sequence[str] | None = None,
        tag_filter: str | None = None,
        payload_format: str = "dockerhub",
        auth_header: str | None = None,
        after: str | None = None,
        active: bool = True,
        source_ip: str = "",
    ) -> tuple[WebhookView, str]:
        """Returns the webhook and its signing secret (shown this once)."""
        if repository is not None:
            validate_name(repository)
        if not name or len(name) > 100 or not name.isprintable():
            raise Invalid("request", "name must be 1 to 100 printable characters")
        values = {
            "url": _validate_url(url),
            "events": json.dumps(_validate_events(events)),
            "tag_filter": _validate_tag_filter(tag_filter),
            "payload_format": _validate_format(payload_format),
        }
        header = _validate_auth_header(auth_header)
        secret = new_secret()
        now = utcnow()
        async with self.db.write() as conn:
            await self._namespace_exists(conn, namespace)
            await self._require_scope(conn, actor, namespace, repository)
            count = (
                await conn.execute(
                    select(func.count())
                    .select_from(Webhook)
                    .where(
                        Webhook.namespace == namespace,
                        Webhook.repository.is_(None) if repository is None else Webhook.repository == repository,
                    )
                )
            ).scalar_one()
            if count >= MAX_WEBHOOKS_PER_SCOPE:
                raise Invalid("request", f"at most {MAX_WEBHOOKS_PER_SCOPE} webhooks per repository or namespace")
            after_id = await self._resolve_after(conn, after, namespace, repository, None)
            webhook_uuid = str(uuidlib.uuid4())
            await conn.execute(
                insert(Webhook).values(
                    uuid=webhook_uuid,
                    namespace=namespace,
                    repository=repository,
                    name=name,
                    secret=self.box.seal(secret.encode()),
                    auth_header=self.box.seal(header.encode()) if header else None,
                    active=active,
                    after_webhook_id=after_id,
                    consecutive_failures=0,
                    created_by=actor.audit_name,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            )
            await _audit(
                conn,
                "webhook.create",
                namespace,
                repository,
                actor,
                source_ip,
                {"webhook": webhook_uuid, "url": url, "events": json.loads(str(values["events"]))},
            )
            row = (await conn.execute(select(Webhook).where(Webhook.uuid == webhook_uuid))).one()
            return await self._view(conn, row), secret

    async def list(
        self, actor: Principal, namespace: str, repository: str | None, page: PageRequest
    ) -> Page[WebhookView]:
        async with self.db.read(consistent=True) as conn:
            await self._namespace_exists(conn, namespace)
            await self._require_scope(conn, actor, namespace, repository)
            scope = [Webhook.namespace == namespace]
            scope.append(Webhook.repository.is_(None) if repository is None else Webhook.repository == repository)
            total = (await conn.execute(select(func.count()).select_from(Webhook).where(*scope))).scalar_one()
            rows = (
                await conn.execute(
                    select(Webhook).where(*scope).order_by(Webhook.id).offset(page.offset).limit(page.page_size)
                )
            ).all()
            return Page([await self._view(conn, row) for row in rows], total, page)

    async def get(self, actor: Principal, webhook_uuid: str) -> WebhookView:
        async with self.db.read(consistent=True) as conn:
            return await self._view(conn, await self._webhook(conn, actor, webhook_uuid))

    async def update(
        self,
        actor: Principal,
        webhook_uuid: str,
        *,
        name: str | None = None,
        url: str | None = None,
        events: Sequence[str] | None = None,
        tag_filter: str | None = None,
        payload_format: str | None = None,
        auth_header: str | None = None,
        after: str | None = None,
        active: bool | None = None,
        source_ip: str = "",
    ) -> WebhookView:
        """``None`` leaves a field as it is; ``tag_filter=""``/``auth_header=""``/``after=""`` clear it.
        Re-activating a webhook forgets why it was disabled and its failure count."""
        values: dict[str, Any] = {}
        if name is not None:
            if not name or len(name) > 100 or not name.isprintable():
                raise Invalid("request", "name must be 1 to 100 printable characters")
            values["name"] = name
        if url is not None:
            values["url"] = _validate_url(url)
        if events is not None:
            values["events"] = json.dumps(_validate_events(events))
        if tag_filter is not None:
            values["tag_filter"] = _validate_tag_filter(tag_filter)
        if payload_format is not None:
            values["payload_format"] = _validate_format(payload_format)
        if auth_header is not None:
            header = _validate_auth_header(auth_header)
            values["auth_header"] = self.box.seal(header.encode()) if header else None
        if active is not None:
            values["active"] = active
            if active:
                values.update(disabled_reason=None, consecutive_failures=0, failing_since=None)
        async with self.db.write() as conn:
            row = await self._webhook(conn, actor, webhook_uuid)
            if after is not None:
                values["after_webhook_id"] = await self._resolve_after(
                    conn, after, row.namespace, row.repository, row.id
                )
            if values:
                values["updated_at"] = utcnow()
                await conn.execute(update(Webhook).where(Webhook.id == row.id).values(**values))
                await _audit(
                    conn,
                    "webhook.update",
                    row.namespace,
                    row.repository,
                    actor,
                    source_ip,
                    {"webhook": webhook_uuid, "changed": sorted(k for k in values if k != "updated_at")},
                )
            fresh = (await conn.execute(select(Webhook).where(Webhook.id == row.id))).one()
            return await self._view(conn, fresh)

    async def regenerate_secret(self, actor: Principal, webhook_uuid: str, *, source_ip: str = "") -> str:
        secret = new_secret()
        async with self.db.write() as conn:
            row = await self._webhook(conn, actor, webhook_uuid)
            await conn.execute(
                update(Webhook)
                .where(Webhook.id == row.id)
                .values(secret=self.box.seal(secret.encode()), updated_at=utcnow())
            )
            await _audit(
                conn,
                "webhook.update",
                row.namespace,
                row.repository,
                actor,
                source_ip,
                {"webhook": webhook_uuid, "changed": ["secret"]},
            )
        return secret

    async def delete(self, actor: Principal, webhook_uuid: str, *, source_ip: str = "") -> None:
        async with self.db.write() as conn:
            row = await self._webhook(conn, actor, webhook_uuid)
            await conn.execute(delete(Webhook).where(Webhook.id == row.id))
            await _audit(
                conn, "webhook.delete", row.namespace, row.repository, actor, source_ip, {"webhook": webhook_uuid}
            )

    # -- deliveries -----------------------------------------------------------------------------------------------

    async def deliveries(self, actor: Principal, webhook_uuid: str, page: PageRequest) -> Page[DeliveryView]:
        async with self.db.read(consistent=True) as conn:
            hook = await self._webhook(conn, actor, webhook_uuid)
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
            return Page([await _delivery_view(conn, hook.uuid, row, history=False) for row in rows], total, page)

    async def delivery(self, actor: Principal, webhook_uuid: str, delivery_uuid: str) -> DeliveryView:
        async with self.db.read(consistent=True) as conn:
            hook = await self._webhook(conn, actor, webhook_uuid)
            row = await _find_delivery(conn, hook.id, delivery_uuid)
            return await _delivery_view(conn, hook.uuid, row, history=True)

    async def redeliver(
        self, actor: Principal, webhook_uuid: str, delivery_uuid: str, *, source_ip: str = ""
    ) -> DeliveryView:
        """Send a past delivery's body again, as a new delivery (its own id, so receivers do not drop it)."""
        async with self.db.write() as conn:
            hook = await self._webhook(conn, actor, webhook_uuid)
            old = await _find_delivery(conn, hook.id, delivery_uuid)
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
            await _audit(
                conn,
                "webhook.redeliver",
                hook.namespace,
                hook.repository,
                actor,
                source_ip,
                {"webhook": webhook_uuid, "delivery": delivery_uuid},
            )
            row = (await conn.execute(select(WebhookDelivery).where(WebhookDelivery.id == new_id))).one()
            return await _delivery_view(conn, hook.uuid, row, history=False)

    async def send_test(
        self, actor: Principal, webhook_uuid: str, *, base_url: str, source_ip: str = ""
    ) -> DeliveryView:
        """Deliver a sample ``push`` event (tag ``latest``) to the webhook now, in its payload format."""
        async with self.db.write() as conn:
            hook = await self._webhook(conn, actor, webhook_uuid)
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
            await _audit(
                conn, "webhook.test", hook.namespace, hook.repository, actor, source_ip, {"webhook": webhook_uuid}
            )
            row = (await conn.execute(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id))).one()
            return await _delivery_view(conn, hook.uuid, row, history=False)


async def _audit(
    conn: AsyncConnection,
    action: str,
    namespace: str,
    repository: str | None,
    actor: Principal,
    source_ip: str,
    data: dict[str, Any],
) -> None:
    """Every webhook change is audited in its namespace, the repository (or the namespace) as the target."""
    await record_audit(
        conn, namespace, action, actor=actor.audit_name, target=repository or namespace, source_ip=source_ip, data=data
    )


async def _find_delivery(conn: AsyncConnection, webhook_id: int, delivery_uuid: str) -> Row[Any]:
    row = (
        await conn.execute(
            select(WebhookDelivery).where(
                WebhookDelivery.uuid == delivery_uuid, WebhookDelivery.webhook_id == webhook_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("request", "delivery not found", {"uuid": delivery_uuid[:64]})
    return row


async def _delivery_view(conn: AsyncConnection, webhook_uuid: str, row: Row[Any], *, history: bool) -> DeliveryView:
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
