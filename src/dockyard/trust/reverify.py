"""Verifying ahead of pulls: when a signature arrives, the image it signs is verified at once (``trust.verify``,
enqueued by ``SignatureSubscriber``, trust's subscriber to the event bus, in the transaction that dispatches the
signature's ``manifest.pushed`` event);
when a namespace's keys or keyless identities change, every signed image of the namespace is verified again
(``trust.reverify``). Both are jobs, enqueued in the transaction that made the change, so the verdicts in
``signature_checks`` (what the tag views and the pull-time policy read) are fresh before anyone asks.

Pull-time checks stay the source of truth: a verdict is only reused while the anchors and signatures it was
computed from are unchanged, so these jobs make pulls and tag views cheaper and the record current, never wrong.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.events.bus import OutboxEvent, Unprepared
from dockyard.events.outbox import MANIFEST_PUSHED
from dockyard.jobs.queue import enqueue
from dockyard.models import Manifest, Repository, Tag
from dockyard.signing.formats import (
    IMAGE_SIGNATURE_ARTIFACT_TYPES,
    is_signature_push,
    signed_digest_of_push,
    signed_digest_of_tag,
)
from dockyard.trust.checker import TrustChecker

log = logging.getLogger("dockyard.trust")

VERIFY = "trust.verify"
REVERIFY = "trust.reverify"
PAGE = 500
MAX_IMAGES = 100_000  # signed images re-verified per namespace change


# One job per change, run one at a time per image or namespace (``ordering_key``), and no dedupe: a change that
# lands while a job is already running must get a run of its own, which a dedupe key would swallow. Runs after the
# first are cheap: ``TrustChecker.check`` reuses a stored result while the anchors and signatures are unchanged.


async def enqueue_verify(conn: AsyncConnection, repository: str, digest: str) -> None:
    """Verify the signatures of ``repository@digest`` soon (a signature for it has just arrived)."""
    await enqueue(
        conn, VERIFY, {"repository": repository, "digest": digest}, ordering_key=f"{VERIFY}:{repository}@{digest}"
    )


async def enqueue_reverify(conn: AsyncConnection, namespace: str) -> None:
    """Verify every signed image of ``namespace`` again (its keys or identities have changed)."""
    await enqueue(conn, REVERIFY, {"namespace": namespace}, ordering_key=f"{REVERIFY}:{namespace}")


class SignatureSubscriber(Unprepared):
    """The event bus's trust subscriber (``dockyard.events.bus.Subscriber``): a pushed signature enqueues the
    verification of the image it signs, so that it is verified now rather than at its first pull."""

    async def on_event(self, conn: AsyncConnection, event: OutboxEvent, prepared: None) -> None:
        if event.type != MANIFEST_PUSHED or not event.repository:
            return
        tags = event.tags
        if not is_signature_push(event.payload.get("artifactType"), tags):
            return
        signed = signed_digest_of_push(event.payload.get("subject"), tags)
        if signed is not None:
            await enqueue_verify(conn, event.repository, signed)


async def signed_images(checker: TrustChecker, namespace: str) -> AsyncIterator[tuple[str, str]]:
    """(repository, digest) of the images of ``namespace`` that have a signature (a signature referrer or a
    ``.sig`` tag), repository by repository; at most ``MAX_IMAGES``."""
    after, seen = 0, 0
    while seen < MAX_IMAGES:
        async with checker.ctx.db.read() as conn:
            repositories = (
                await conn.execute(
                    select(Repository.id, Repository.name)
                    .where(Repository.namespace == namespace, Repository.id > after)
                    .order_by(Repository.id)
                    .limit(PAGE)
                )
            ).all()
        for repo in repositories:
            async with checker.ctx.db.read() as conn:
                subjects = set(
                    (
                        await conn.execute(
                            select(Manifest.subject_digest)
                            .where(
                                Manifest.repository_id == repo.id,
                                Manifest.subject_digest.is_not(None),
                                Manifest.artifact_type.in_(IMAGE_SIGNATURE_ARTIFACT_TYPES),
                            )
                            .distinct()
                            .limit(MAX_IMAGES)
                        )
                    )
                    .scalars()
                    .all()
                )
                tags = (
                    await conn.execute(
                        select(Tag.name).where(Tag.repository_id == repo.id, Tag.name.like("%.sig")).limit(MAX_IMAGES)
                    )
                ).scalars()
                subjects.update(d for d in (signed_digest_of_tag(t) for t in tags) if d is not None)
            for digest in sorted(str(s) for s in subjects)[: MAX_IMAGES - seen]:
                seen += 1
                yield repo.name, digest
        if len(repositories) < PAGE:
            return
        after = repositories[-1].id


async def reverify_namespace(checker: TrustChecker, namespace: str) -> int:
    """Verify every signed image of ``namespace`` against its current anchors; returns how many were checked."""
    checker.forget(namespace)
    anchors = await checker.anchors.get(namespace)
    done = 0
    async for repository, digest in signed_images(checker, namespace):
        await checker.check(repository, digest, anchors)
        done += 1
    log.info("re-verified %d signed images of %s", done, namespace)
    return done
