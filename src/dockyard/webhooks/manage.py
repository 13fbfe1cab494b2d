"""Managing webhooks: create (the signing secret is shown once), list, read, change, delete, regenerate the secret,
read the delivery history, redeliver a past delivery and send a test event.

Who may: a namespace's owners manage its namespace-wide webhooks; holders of admin on a repository manage that
repository's webhooks (namespace owners and site administrators hold it). ``authz.authorizer`` decides, by its
rule: an unknown namespace or a repository the caller may not see is ``NotFound``, a namespace or repository it
sees but may not manage ``Denied``; a webhook (by uuid) the caller may not manage is ``NotFound``.

The checks of each setting are in ``webhooks.validation``; the delivery history (listing, redelivery, test events)
in ``webhooks.history``. This module authorizes, audits and runs the units of work.
"""

from __future__ import annotations

import json
import re
import uuid as uuidlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox
from dockyard.authz.authorizer import NamespaceResource, Permission, RepositoryResource, require
from dockyard.authz.principal import Principal
from dockyard.core.names import validate_name
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Denied, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Webhook
from dockyard.models.base import utcnow
from dockyard.webhooks import history
from dockyard.webhooks.hmac import new_secret
from dockyard.webhooks.snapshots import DeliveryView, WebhookView
from dockyard.webhooks.validation import (
    validate_auth_header,
    validate_events,
    validate_format,
    validate_tag_filter,
    validate_url,
    validate_webhook_name,
)

MAX_WEBHOOKS_PER_SCOPE = 100

_ID_PREFIX = re.compile(r"[0-9a-f-]{4,36}")  # webhook ids are UUIDs: a prefix needs no LIKE escaping


class WebhookService:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    # -- authorization --------------------------------------------------------------------------------------------

    async def _require_scope(
        self, conn: AsyncConnection, actor: Principal, namespace: str, repository: str | None
    ) -> None:
        """Namespace-wide webhooks: the namespace's owners (unknown namespace: NotFound; others: Denied). A
        repository's: admin on it (a repository the actor may not see: NotFound; one it sees: Denied)."""
        if repository is None:
            await require(
                conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(namespace), doing="manage its webhooks"
            )
        else:
            await require(conn, actor, Permission.REPOSITORY_ADMIN, RepositoryResource(repository))

    async def _webhook(self, conn: AsyncConnection, actor: Principal, webhook_uuid: str) -> Row[Any]:
        """A webhook is visible only to who may manage it: to anyone else it does not exist."""
        row = (await conn.execute(select(Webhook).where(Webhook.uuid == webhook_uuid))).first()
        if row is None or row.namespace is None:
            raise NotFound("webhook", "webhook not found", {"uuid": webhook_uuid[:64]})
        try:
            await self._require_scope(conn, actor, row.namespace, row.repository)
        except (NotFound, Denied) as exc:
            raise NotFound("webhook", "webhook not found", {"uuid": webhook_uuid[:64]}) from exc
        return row

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
            raise Invalid("webhook", "after must name a webhook of the same repository or namespace")
        # Walk up the chain: it must not come back to this webhook.
        seen: set[int] = set()
        current: Any = row
        while current is not None:
            if (own_id is not None and current.id == own_id) or current.id in seen:
                raise Invalid("webhook", "after would make the callback chain a cycle")
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
        validate_webhook_name(name)
        values = {
            "url": validate_url(url),
            "events": json.dumps(validate_events(events)),
            "tag_filter": validate_tag_filter(tag_filter),
            "payload_format": validate_format(payload_format),
        }
        header = validate_auth_header(auth_header)
        secret = new_secret()
        now = utcnow()
        async with self.db.write() as conn:
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
                raise Invalid("webhook", f"at most {MAX_WEBHOOKS_PER_SCOPE} webhooks per repository or namespace")
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

    async def resolve_id(self, prefix: str) -> str:
        """The webhook id that ``prefix`` (at least 4 characters of it) starts, for the operator's commands, where
        ids are typed by hand. Raises ``NotFound("webhook")`` for none and ``Invalid("webhook")`` for several."""
        prefix = prefix.strip().lower()
        if not _ID_PREFIX.fullmatch(prefix):
            raise NotFound("webhook", "webhook not found", {"id": prefix[:64]})
        async with self.db.read() as conn:
            found = (await conn.execute(select(Webhook.uuid).where(Webhook.uuid.like(f"{prefix}%")).limit(2))).all()
        if not found:
            raise NotFound("webhook", "webhook not found", {"id": prefix})
        if len(found) > 1:
            raise Invalid("webhook", "several webhooks have ids starting so: give more of it", {"id": prefix})
        return str(found[0].uuid)

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
            values["name"] = validate_webhook_name(name)
        if url is not None:
            values["url"] = validate_url(url)
        if events is not None:
            values["events"] = json.dumps(validate_events(events))
        if tag_filter is not None:
            values["tag_filter"] = validate_tag_filter(tag_filter)
        if payload_format is not None:
            values["payload_format"] = validate_format(payload_format)
        if auth_header is not None:
            header = validate_auth_header(auth_header)
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
            return await history.list_deliveries(conn, await self._webhook(conn, actor, webhook_uuid), page)

    async def delivery(self, actor: Principal, webhook_uuid: str, delivery_uuid: str) -> DeliveryView:
        async with self.db.read(consistent=True) as conn:
            return await history.get_delivery(conn, await self._webhook(conn, actor, webhook_uuid), delivery_uuid)

    async def redeliver(
        self, actor: Principal, webhook_uuid: str, delivery_uuid: str, *, source_ip: str = ""
    ) -> DeliveryView:
        """Send a past delivery's body again, as a new delivery (its own id, so receivers do not drop it)."""
        async with self.db.write() as conn:
            hook = await self._webhook(conn, actor, webhook_uuid)
            view = await history.redeliver(conn, hook, delivery_uuid)
            await _audit(
                conn,
                "webhook.redeliver",
                hook.namespace,
                hook.repository,
                actor,
                source_ip,
                {"webhook": webhook_uuid, "delivery": delivery_uuid},
            )
            return view

    async def send_test(
        self, actor: Principal, webhook_uuid: str, *, base_url: str, source_ip: str = ""
    ) -> DeliveryView:
        """Deliver a sample ``push`` event (tag ``latest``) to the webhook now, in its payload format."""
        async with self.db.write() as conn:
            hook = await self._webhook(conn, actor, webhook_uuid)
            view = await history.send_test(conn, hook, base_url)
            await _audit(
                conn, "webhook.test", hook.namespace, hook.repository, actor, source_ip, {"webhook": webhook_uuid}
            )
            return view


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
