"""Distribution-compatible notifications: the ``notifications_endpoints`` setting becomes server-wide webhooks
(``namespace`` NULL) in distribution's envelope format, so tools written for the reference registry's
notifications keep working. Synchronised on start: endpoints added, changed or removed in the settings are added,
changed or removed here. Replicas starting together are safe: each endpoint's row has a fixed id."""

from __future__ import annotations

import json
import secrets
import uuid

from sqlalchemy import Select, delete, select, update

from dockyard.auth.secrets import SecretBox
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.models import Webhook
from dockyard.models.base import utcnow
from dockyard.settings import NotificationEndpoint, Settings

_NAMESPACE = uuid.UUID("5f0c7a52-4d8e-4d53-9d8a-2f3c1b7f6e10")


def _settings_webhooks() -> Select[str]:
    return select(Webhook.uuid).where(Webhook.namespace.is_(None), Webhook.created_by == "settings")


def endpoint_uuid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def _headers(endpoint: NotificationEndpoint) -> str | None:
    lines = [
        f"{k.strip()}: {v.strip()}" for k, v in endpoint.headers.items() if "\n" not in k + v and "\r" not in k + v
    ]
    return "\n".join(lines) or None


async def sync_endpoints(db: Database, settings: Settings) -> None:
    box = SecretBox(settings.secret_key)
    wanted = {endpoint_uuid(e.name): e for e in settings.notifications_endpoints}
    now = utcnow()
    if not wanted:  # the usual case: a read, so that workers starting side by side do not queue for the writer
        async with db.read() as conn:
            if (await conn.execute(_settings_webhooks().limit(1))).first() is None:
                return
    async with db.write() as conn:
        for webhook_uuid, endpoint in wanted.items():
            header = _headers(endpoint)
            values = {
                "name": f"notifications:{endpoint.name}",
                "url": endpoint.url,
                "events": json.dumps(endpoint.events),
                "payload_format": "distribution",
                "auth_header": box.seal(header.encode()) if header else None,
                "updated_at": now,
            }
            inserted = await insert_ignore(
                conn,
                Webhook,
                {
                    "uuid": webhook_uuid,
                    "namespace": None,
                    "repository": None,
                    "tag_filter": None,
                    "secret": box.seal(secrets.token_urlsafe(32).encode()),
                    "active": True,
                    "consecutive_failures": 0,
                    "created_by": "settings",
                    "created_at": now,
                    **values,
                },
            )
            if not inserted:
                await conn.execute(update(Webhook).where(Webhook.uuid == webhook_uuid).values(**values))
        stale = (await conn.execute(_settings_webhooks())).scalars().all()
        gone = [u for u in stale if u not in wanted]
        if gone:
            await conn.execute(delete(Webhook).where(Webhook.uuid.in_(gone)))
