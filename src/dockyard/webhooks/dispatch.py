"""The webhooks' subscriber to the event bus (``dockyard.events.bus``): from outbox events to deliveries.

For each event, ``WebhookSubscriber.prepare`` (outside any transaction) works out the webhook event it is — a
``manifest.pushed`` of a signature is ``signature_added``, one pushed by digest only is no event —, finds the
webhooks that want it (scope, event filter, tag glob, active) and builds the ``EventView`` the payloads are
rendered from; ``on_event``, in the bus's claim transaction of the event, writes the delivery rows and enqueues
their ``webhooks.deliver`` jobs. The bus makes that at most once per event across replicas and again after a crash
before the commit, so nothing is lost.

Callback chains: a webhook with ``after`` set gets its delivery in state ``waiting`` under the delivery of the
webhook it follows (when that one also takes the event); the callback of the parent releases or stops it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import or_, select, true
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.names import namespace_of, short_name_of
from dockyard.db.engine import Database
from dockyard.events.bus import OutboxEvent
from dockyard.models import Manifest, Repository, Webhook
from dockyard.models.base import utcnow
from dockyard.registry.blobs import BlobService
from dockyard.repos.images import ImageResolver, ManifestRecord
from dockyard.settings import Settings
from dockyard.signing.formats import is_signature_push
from dockyard.webhooks.events import (
    PUSH,
    SIGNATURE_ADDED,
    EventView,
    Platform,
    RepositoryInfo,
    webhook_event_for,
)
from dockyard.webhooks.payloads import Payload, build_payload, supports
from dockyard.webhooks.queueing import enqueue_delivery, new_delivery


def public_base_url(settings: Settings) -> str:
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def callback_token() -> tuple[str, str]:
    """A fresh callback token and the SHA-256 under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


def render(view: EventView, payload_format: str, base_url: str) -> tuple[Payload, str]:
    """The body of one delivery in ``payload_format``, with a fresh callback URL; returns it and the SHA-256 of
    the callback token (what is stored)."""
    token, token_hash = callback_token()
    rendered = build_payload(view, payload_format, callback_url=f"{base_url}/api/v2/webhooks/callbacks/{token}")
    return rendered, token_hash


def chain_order(hooks: Sequence[Row[Any]]) -> list[Row[Any]]:
    """Webhooks with the ones they follow first, so a child's parent delivery exists when the child's is made."""
    by_id = {hook.id: hook for hook in hooks}
    ordered: list[Row[Any]] = []
    placed: set[int] = set()

    def place(hook: Row[Any], depth: int = 0) -> None:
        if hook.id in placed or depth > len(hooks):
            return
        parent = by_id.get(hook.after_webhook_id)
        if parent is not None:
            place(parent, depth + 1)
        placed.add(hook.id)
        ordered.append(hook)

    for hook in sorted(hooks, key=lambda h: h.id):
        place(hook)
    return ordered


def wants(hook: Row[Any], event: str, tag: str | None) -> bool:
    if event not in json.loads(hook.events) or not supports(hook.payload_format, event):
        return False
    if hook.tag_filter and tag is not None:
        return fnmatchcase(tag, hook.tag_filter)
    return not (hook.tag_filter and tag is None and event == PUSH)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``prepare`` found: the webhooks that want the event, in chain order, and the event's view."""

    hooks: list[Row[Any]]
    view: EventView


def webhook_event_of(event: OutboxEvent) -> str | None:
    """The webhook event an outbox event is, or None: a signature's push is ``signature_added``, and a manifest
    pushed by digest only (an index's child) is not a ``push``."""
    name = webhook_event_for(event.type)
    if name == PUSH and is_signature_push(event.payload.get("artifactType"), event.tags):
        return SIGNATURE_ADDED  # a cosign/skopeo signature (tag scheme or referrer), not an image push
    if name == PUSH and not event.tags:
        return None
    return name


class WebhookSubscriber:
    """Turns outbox events into webhook deliveries (a ``dockyard.events.bus.Subscriber``)."""

    def __init__(self, db: Database, blobs: BlobService, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.images = ImageResolver(blobs)

    async def _hooks(self, namespaces: set[str]) -> list[Row[Any]]:
        """The active webhooks of ``namespaces`` (whole-namespace and per-repository ones) and the site-wide ones."""
        async with self.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        select(Webhook).where(
                            Webhook.active == true(),
                            or_(Webhook.namespace.in_(sorted(namespaces)), Webhook.namespace.is_(None)),
                        )
                    )
                ).all()
            )

    async def prepare(self, events: Sequence[OutboxEvent]) -> list[_Plan | None]:
        """For each event, the webhooks that want it and its view, or None when none does. The webhooks of the
        whole batch are read in one query."""
        named = [(event, webhook_event_of(event) if event.repository else None) for event in events]
        namespaces = {namespace_of(event.repository) for event, name in named if name and event.repository}
        hooks = await self._hooks(namespaces) if namespaces else []
        return [await self._plan(event, name, hooks) if name else None for event, name in named]

    async def _plan(self, event: OutboxEvent, name: str, hooks: list[Row[Any]]) -> _Plan | None:
        repository = event.repository or ""
        namespace = namespace_of(repository)
        tags = event.tags
        tag = tags[0] if tags else None
        wanting = [
            hook
            for hook in hooks
            if (hook.namespace is None or (hook.namespace == namespace and hook.repository in (None, repository)))
            and wants(hook, name, tag)
        ]
        if not wanting:
            return None
        return _Plan(chain_order(wanting), await self.view(event, name, tags))

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, plan: _Plan | None) -> None:
        """Write the deliveries of ``plan`` and enqueue their jobs, in the event's claim transaction."""
        if plan is None:
            return
        view = plan.view
        base = public_base_url(self.settings)
        expires = utcnow() + timedelta(seconds=self.settings.webhook_callback_ttl_seconds)
        made: dict[int, int] = {}
        for hook in plan.hooks:
            rendered, token_hash = render(view, hook.payload_format, base)
            parent = made.get(hook.after_webhook_id) if hook.after_webhook_id is not None else None
            delivery_id = await new_delivery(
                conn,
                hook.id,
                event_id=view.event_id,
                event=view.event,
                body=rendered.body.decode(),
                content_type=rendered.content_type,
                state="waiting" if parent is not None else "pending",
                parent_id=parent,
                callback_token=token_hash,
                callback_expires_at=expires,
            )
            made[hook.id] = delivery_id
            if parent is None:
                await enqueue_delivery(
                    conn, hook.id, delivery_id, timedelta(seconds=self.settings.webhook_retry_horizon_seconds)
                )

    async def view(self, outbox_event: OutboxEvent, name: str, tags: tuple[str, ...]) -> EventView:
        """Everything the payloads need about the event: the repository's Hub metadata and, for a push, the
        platforms and size of what was pushed (read from the stored manifest and its config)."""
        payload = outbox_event.payload
        repository = outbox_event.repository or ""
        platforms: tuple[Platform, ...] = ()
        size: int | None = payload.get("size")
        async with self.db.read(consistent=True) as conn:
            repo = (
                await conn.execute(
                    select(
                        Repository.id,
                        Repository.description,
                        Repository.full_description,
                        Repository.is_private,
                        Repository.star_count,
                        Repository.created_at,
                    ).where(Repository.name == repository)
                )
            ).first()
            plan = None
            if repo is not None and outbox_event.digest and name == PUSH:
                manifest = (
                    await conn.execute(
                        select(Manifest.digest, Manifest.media_type, Manifest.content, Manifest.created_at).where(
                            Manifest.repository_id == repo.id, Manifest.digest == outbox_event.digest
                        )
                    )
                ).first()
                if manifest is not None:
                    record = ManifestRecord(manifest.digest, manifest.media_type, manifest.content, manifest.created_at)
                    plan = await self.images.prepare(conn, repo.id, [record])
        if plan is not None:
            images = (await self.images.finish(plan)).get(outbox_event.digest or "", ())
            platforms = tuple(
                Platform(image.os or "unknown", image.architecture or "unknown", image.variant) for image in images
            )
            if images:
                size = sum(image.size for image in images)
        info = RepositoryInfo(owner=namespace_of(repository))
        if repo is not None:
            info = RepositoryInfo(
                description=repo.description,
                full_description=repo.full_description,
                is_private=repo.is_private,
                star_count=repo.star_count,
                date_created=repo.created_at,
                owner=namespace_of(repository),
            )
        return EventView(
            event_id=outbox_event.event_id,
            event=name,
            occurred_at=outbox_event.occurred_at,
            repository=repository,
            namespace=namespace_of(repository),
            name=short_name_of(repository),
            actor=outbox_event.actor or None,
            tag=tags[0] if tags else outbox_event.tag,
            tags=tags,
            digest=outbox_event.digest,
            media_type=outbox_event.media_type,
            size=size,
            platforms=platforms,
            info=info,
            base_url=public_base_url(self.settings),
            details={k: v for k, v in payload.items() if k in _DETAILS},
        )


# Outbox payload fields that webhook payloads carry in ``details``.
_DETAILS = (
    "count",
    "window_seconds",
    "mode",
    "reason",
    "policy",
    "summary",
    "vulnerabilities",
    "quota",
    "used",
    "limit",
    "soft_percent",
    "build",
    "replication",
)


def sample_view(repository: str, base_url: str) -> EventView:
    """The event a ``test`` delivery carries: a push of ``latest`` by the Dockyard test sender."""
    return EventView(
        event_id=str(uuid.uuid4()),
        event=PUSH,
        occurred_at=utcnow(),
        repository=repository,
        namespace=namespace_of(repository),
        name=short_name_of(repository),
        actor="dockyard-test",
        tag="latest",
        tags=("latest",),
        digest="sha256:" + "0" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        size=0,
        platforms=(Platform("linux", "amd64"),),
        info=RepositoryInfo(owner=namespace_of(repository)),
        base_url=base_url,
        details={"test": True},
    )
