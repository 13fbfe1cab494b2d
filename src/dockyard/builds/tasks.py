"""The builds' background work: the job handlers (``builds.run`` runs a build, ``builds.archive_log`` moves a finished
build's log to storage, ``builds.poll`` lists a link's remote and queues builds for moved refs), the periodic check
that enqueues ``builds.poll`` for links due for polling, and ``BuildSubscriber``, the event bus's subscriber that
queues the builds depending on a pushed base image.

``dockyard builder`` runs only ``builds.run`` (``BUILDER_KINDS``): builders need the database and this server's
``/v2``, never blob storage. Archiving and polling run where the other jobs run (``dockyard serve``/``worker``).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Final

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox
from dockyard.auth.token_keys import KeyRing
from dockyard.auth.tokens import TokenService
from dockyard.builds import logs, records
from dockyard.builds.git import GitAuth, GitError, ls_remote
from dockyard.builds.pipeline import Pipeline
from dockyard.builds.rules import changed_refs
from dockyard.builds.service import POLL, queue_dependents, queue_for_ref
from dockyard.db.engine import Database
from dockyard.events.bus import OutboxEvent, Unprepared
from dockyard.jobs.handlers import Fail, Handler, JobContext, Retry
from dockyard.jobs.queue import enqueue
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.models import BuildLink
from dockyard.models.base import utcnow
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.repos.access import new_image_pushed
from dockyard.settings import Settings

log = logging.getLogger("dockyard.builds")

BUILDER_KINDS: Final = (records.RUN,)


def token_service(db: Database, settings: Settings) -> TokenService:
    horizon = max(settings.refresh_token_lifetime_seconds, settings.token_lifetime_seconds)
    return TokenService(KeyRing(db, SecretBox(settings.secret_key), timedelta(seconds=horizon)), settings)


@register(records.RUN)
def run_build(env: JobEnvironment) -> Handler:
    pipeline = Pipeline(env.db, env.settings, token_service(env.db, env.settings), SecretBox(env.settings.secret_key))

    async def handle(job: JobContext) -> None:
        await pipeline.run(int(job.payload["build"]), job.attempt)
        env.wake()  # the archive job, and the next build of this rule and ref

    return handle


@register(records.ARCHIVE_LOG)
def archive_log(env: JobEnvironment) -> Handler:
    blobs = BlobService(RegistryContext(db=env.db, store=env.store, settings=env.settings))

    async def handle(job: JobContext) -> None:
        await logs.archive(env.db, blobs, int(job.payload["build"]))

    return handle


def _auth(box: SecretBox, link: object) -> GitAuth:
    token = getattr(link, "https_token", None)
    key = getattr(link, "ssh_private_key", None)
    return GitAuth(
        https_username=getattr(link, "https_username", None),
        https_token=box.open(token).decode() if token else None,
        ssh_private_key=box.open(key).decode() if key else None,
        ssh_known_hosts=getattr(link, "ssh_known_hosts", None),
    )


async def poll_link(db: Database, box: SecretBox, link_id: int, payload: dict[str, object]) -> int:
    """List the link's remote; queue builds for refs that moved since the last poll (autobuild rules), or — with
    ``all`` (a trigger without a ref) — for every ref any rule matches. The first poll of a link only records
    what it saw. Returns how many builds were queued or coalesced."""
    async with db.read() as conn:
        link = (await conn.execute(select(BuildLink).where(BuildLink.id == link_id))).first()
    if link is None:
        return 0
    everything = bool(payload.get("all"))
    try:
        refs = await ls_remote(link.url, _auth(box, link))
    except GitError as exc:
        raise Retry(None, str(exc)) from exc
    before = {} if everything else json.loads(link.polled_refs or "{}")
    moved = changed_refs(before, refs)
    count = 0
    async with db.write() as conn:
        current = (await conn.execute(select(BuildLink).where(BuildLink.id == link_id))).first()
        if current is None or current.url != link.url:
            return 0  # unlinked or re-linked meanwhile
        if everything or link.polled_at is not None:
            for ref, sha in moved:
                queued = await queue_for_ref(
                    conn,
                    current,
                    ref,
                    sha,
                    trigger=str(payload.get("trigger") or "poll"),
                    actor=str(payload.get("actor") or ""),
                    autobuild_only=not everything,
                    rule_uuid=str(payload["rule"]) if payload.get("rule") else None,
                )
                count += len(queued)
        await conn.execute(
            update(BuildLink).where(BuildLink.id == link_id).values(polled_refs=json.dumps(refs), polled_at=utcnow())
        )
    return count


@register(POLL)
def poll(env: JobEnvironment) -> Handler:
    box = SecretBox(env.settings.secret_key)

    async def handle(job: JobContext) -> None:
        try:
            if await poll_link(env.db, box, int(job.payload["link"]), job.payload):
                env.wake()
        except ValueError as exc:
            raise Fail(f"cannot read the link's credentials: {exc}") from exc

    return handle


async def enqueue_due_polls(db: Database) -> int:
    """Enqueue ``builds.poll`` for every link whose polling interval has passed (the periodic job)."""
    now = utcnow()
    async with db.write() as conn:
        rows = (
            await conn.execute(
                select(BuildLink.id, BuildLink.polled_at, BuildLink.poll_interval_seconds).where(
                    BuildLink.poll_interval_seconds > 0,
                    or_(BuildLink.polled_at.is_(None), BuildLink.polled_at < now - timedelta(seconds=60)),
                )
            )
        ).all()
        due = 0
        for row in rows:
            polled = row.polled_at
            if polled is not None and records.as_utc(polled) + timedelta(seconds=row.poll_interval_seconds) > now:
                continue
            if await enqueue(conn, POLL, {"link": int(row.id)}, dedupe_key=f"{POLL}:{row.id}", max_attempts=3):
                due += 1
    return due


class BuildSubscriber(Unprepared):
    """The event bus's builds subscriber: a new image pushed under a tag that a rule's last build used as its base
    queues that rule again (once: coalescing keeps one queued build per rule and ref)."""

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: None) -> None:
        if (pushed := new_image_pushed(event)) is not None:
            await queue_dependents(conn, pushed[0], event.tags)
