"""From outbox events to deliveries: the dispatcher reads events no one has dispatched yet (in id order), finds
the webhooks that want each one (scope, event filter, tag glob, active), renders each webhook's payload and, in
one transaction per event, claims the event (``dispatched_at``), writes the delivery rows and enqueues their
``webhooks.deliver`` jobs. Claiming is a conditional UPDATE, so replicas dispatching at once never deliver an
event twice, and a crash before the commit leaves the event to be dispatched again — nothing is lost. A new
signature also enqueues the verification of the image it signs (``trust.verify``), in the same transaction.

Callback chains: a webhook with ``after`` set gets its delivery in state ``waiting`` under the delivery of the
webhook it follows (when that one also takes the event); the callback of the parent releases or stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import and_, delete, or_, select, true, update
from sqlalchemy.engine import Row

from dockyard.core.names import namespace_of, short_name_of
from dockyard.db.engine import Database
from dockyard.hub.images import ImageResolver, ManifestRecord
from dockyard.models import Event, Manifest, Repository, Webhook
from dockyard.models.base import utcnow
from dockyard.registry.blobs import BlobService
from dockyard.settings import Settings
from dockyard.signing.formats import IMAGE_SIGNATURE_ARTIFACT_TYPES, signed_digest_of_tag
from dockyard.trust.reverify import enqueue_verify
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

log = logging.getLogger("dockyard.webhooks")
BATCH = 100
PRUNE_INTERVAL = 3600.0


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


class Dispatcher:
    def __init__(
        self, db: Database, blobs: BlobService, settings: Settings, *, wake: Callable[[], None] | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.images = ImageResolver(blobs)
        self._wake = wake
        self._poke = asyncio.Event()

    def poke(self) -> None:
        """Look for new events now (in-process writers call it after commit)."""
        self._poke.set()

    async def prune(self, batch: int = 5000) -> int:
        """Delete dispatched events older than ``events_retention_seconds`` (the outbox is not an archive: the
        audit log and the delivery history keep what must be kept). Bounded statements; returns how many."""
        cutoff = utcnow() - timedelta(seconds=self.settings.events_retention_seconds)
        removed = 0
        while True:
            async with self.db.write() as conn:
                ids = (
                    (
                        await conn.execute(
                            select(Event.id).where(Event.dispatched_at < cutoff).order_by(Event.id).limit(batch)
                        )
                    )
                    .scalars()
                    .all()
                )
                if ids:
                    await conn.execute(delete(Event).where(Event.id.in_(ids)))
            removed += len(ids)
            if len(ids) < batch:
                return removed

    async def run(self) -> None:
        """Dispatch forever: whenever there is work, else every ``webhook_dispatch_poll_seconds``; prune old
        events now and then."""
        next_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            if loop.time() >= next_prune:
                next_prune = loop.time() + PRUNE_INTERVAL
                try:
                    await self.prune()
                except Exception:
                    log.exception("pruning old events failed")
            try:
                done = await self.run_once()
            except Exception:
                log.exception("webhook dispatch failed; trying again")
                done = 0
            if done == 0:
                self._poke.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), self.settings.webhook_dispatch_poll_seconds)

    async def run_once(self, limit: int = BATCH) -> int:
        """Dispatch up to ``limit`` pending events; returns how many were looked at."""
        async with self.db.read() as conn:
            rows = (
                await conn.execute(select(Event).where(Event.dispatched_at.is_(None)).order_by(Event.id).limit(limit))
            ).all()
        delivered = False
        for row in rows:
            delivered = await self.dispatch(row) or delivered
        if delivered and self._wake is not None:
            self._wake()
        return len(rows)

    async def _hooks(self, repository: str) -> list[Row[Any]]:
        namespace = namespace_of(repository)
        async with self.db.read() as conn:
            return list(
                (
                    await conn.execute(
                        select(Webhook).where(
                            Webhook.active == true(),
                            or_(
                                and_(
                                    Webhook.namespace == namespace,
                                    or_(Webhook.repository.is_(None), Webhook.repository == repository),
                                ),
                                Webhook.namespace.is_(None),
                            ),
                        )
                    )
                ).all()
            )

    async def dispatch(self, row: Row[Any]) -> bool:
        """Turn one event into deliveries. Returns whether any delivery was enqueued."""
        payload = json.loads(row.payload or "{}")
        event = webhook_event_for(row.type)
        tags = tuple(payload.get("tags") or ([row.tag] if row.tag else []))
        if event == PUSH and (
            payload.get("artifactType") in IMAGE_SIGNATURE_ARTIFACT_TYPES
            or (tags and all(t.endswith(".sig") for t in tags))
        ):
            event = SIGNATURE_ADDED  # a cosign/skopeo signature (tag scheme or referrer), not an image push
        elif event == PUSH and not tags:
            event = None  # a manifest pushed by digest only (an index's child) is not a "push"
        hooks: list[Row[Any]] = []
        if event is not None and row.repository:
            tag = tags[0] if tags else None
            hooks = [hook for hook in await self._hooks(row.repository) if wants(hook, event, tag)]
        view = await self.view(row, event, tags) if hooks and event is not None else None
        async with self.db.write() as conn:
            claimed = await conn.execute(
                update(Event).where(Event.id == row.id, Event.dispatched_at.is_(None)).values(dispatched_at=utcnow())
            )
            if claimed.rowcount != 1:
                return False
            if event == SIGNATURE_ADDED and row.repository:
                signed = payload.get("subject") or next(filter(None, map(signed_digest_of_tag, tags)), None)
                if isinstance(signed, str):
                    await enqueue_verify(conn, row.repository, signed)  # verified now, not at the first pull
            if view is None:
                return False
            base = public_base_url(self.settings)
            expires = utcnow() + timedelta(seconds=self.settings.webhook_callback_ttl_seconds)
            made: dict[int, int] = {}
            for hook in chain_order(hooks):
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
            return bool(made)

    async def view(self, row: Row[Any], event: str, tags: tuple[str, ...]) -> EventView:
        """Everything the payloads need about the event: the repository's Hub metadata and, for a push, the
        platforms and size of what was pushed (read from the stored manifest and its config)."""
        payload = json.loads(row.payload or "{}")
        repository = row.repository
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
            if repo is not None and row.digest and event == PUSH:
                manifest = (
                    await conn.execute(
                        select(Manifest.digest, Manifest.media_type, Manifest.content, Manifest.created_at).where(
                            Manifest.repository_id == repo.id, Manifest.digest == row.digest
                        )
                    )
                ).first()
                if manifest is not None:
                    record = ManifestRecord(manifest.digest, manifest.media_type, manifest.content, manifest.created_at)
                    plan = await self.images.prepare(conn, repo.id, [record])
        if plan is not None:
            images = (await self.images.finish(plan)).get(row.digest, ())
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
            event_id=row.event_id,
            event=event,
            occurred_at=row.occurred_at,
            repository=repository,
            namespace=namespace_of(repository),
            name=short_name_of(repository),
            actor=row.actor or None,
            tag=tags[0] if tags else row.tag,
            tags=tags,
            digest=row.digest,
            media_type=row.media_type,
            size=size,
            platforms=platforms,
            info=info,
            base_url=public_base_url(self.settings),
            details={k: v for k, v in payload.items() if k in ("count", "window_seconds", "mode", "reason")},
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
