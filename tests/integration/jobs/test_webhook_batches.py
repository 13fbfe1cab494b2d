"""The webhook subscriber prepares a batch of events with one read of the webhooks (``WebhookSubscriber.prepare``):
each event of a batch that mixes namespaces and repositories gets exactly the webhooks it would get alone — its
namespace's whole-namespace webhooks, its own repository's, the site-wide ones, active ones only."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import event, insert

from dockyard.db.engine import Database
from dockyard.events.bus import OutboxEvent
from dockyard.events.outbox import MANIFEST_PUSHED
from dockyard.models import Webhook
from dockyard.models.base import utcnow
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.settings import Settings
from dockyard.storage.factory import open_blob_store
from dockyard.webhooks.dispatch import WebhookSubscriber


async def add_hook(
    db: Database, name: str, namespace: str | None, repository: str | None = None, **extra: object
) -> int:
    values = {
        "uuid": str(uuid.uuid4()),
        "namespace": namespace,
        "repository": repository,
        "name": name,
        "url": f"http://127.0.0.1:9/{name}",
        "events": json.dumps(["push"]),
        "payload_format": "dockyard",
        "secret": "sealed",
        "active": True,
        **extra,
    }
    async with db.write() as conn:
        return int((await conn.execute(insert(Webhook).values(values).returning(Webhook.id))).scalar_one())


def pushed(number: int, repository: str | None) -> OutboxEvent:
    return OutboxEvent(
        id=number,
        event_id=str(uuid.uuid4()),
        type=MANIFEST_PUSHED,
        occurred_at=utcnow(),
        actor="someone",
        repository=repository,
        tag=f"t{number}",
        digest="sha256:" + f"{number:02x}" * 32,
        media_type="application/vnd.oci.image.manifest.v1+json",
        payload={"tags": [f"t{number}"]},
    )


async def test_a_mixed_batch_gets_each_events_own_webhooks_from_one_read(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    whole = await add_hook(db, "whole", "acme")
    other = await add_hook(db, "other", "acme", "acme/other")
    site = await add_hook(db, "site", None)
    zeta = await add_hook(db, "zeta", "zeta")
    await add_hook(db, "off", "acme", active=False)
    store = open_blob_store(f"file://{tmp_path / 'blobs'}")
    subscriber = WebhookSubscriber(db, BlobService(RegistryContext(db=db, store=store, settings=settings)), settings)
    batch = [pushed(1, "acme/app"), pushed(2, "acme/other"), pushed(3, "beta/x"), pushed(4, None), pushed(5, "zeta/y")]
    reads: list[str] = []
    engine = db.engine.sync_engine

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "FROM webhooks" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        plans = await subscriber.prepare(batch)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    hooks = [None if plan is None else {hook.id for hook in plan.hooks} for plan in plans]
    assert hooks == [{whole, site}, {whole, other, site}, {site}, None, {zeta, site}]
    assert len(reads) == 1
    assert [plan.view.repository for plan in plans if plan is not None] == [
        "acme/app",
        "acme/other",
        "beta/x",
        "zeta/y",
    ]
