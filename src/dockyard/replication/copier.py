"""Copying artifacts from one ``Endpoint`` to another: ``Copier.copy_tag`` copies an image (a manifest, or an index
with every child) with its blobs and its referrers, ``Copier.delete_tag`` replicates a tag's deletion.

What is moved, and what is not:

- a manifest the destination already has under the tag (same digest) is not sent again: the tag is ``skipped``;
  a child of an index the destination has (by digest) is not sent either;
- a blob the destination has (``HEAD``) is not sent; one that an earlier copy of this run put in another
  repository of the destination, or that the ``mount_hints`` say another repository there holds (the
  destination names of this Dockyard's repositories with the blob, for a push), is mounted from there
  (cross-repository mount, no bytes moved); anything else
  streams from source to destination, never whole in memory, at most ``limit`` bytes per second;
- referrers go with their image: the OCI referrers of its digest (``/v2/<name>/referrers/<digest>``) and cosign's
  tags ``sha256-<hex>.sig`` / ``.att`` / ``.sbom``, each reported as an artifact of its own.

An outcome per artifact is returned; the caller records it. Exceptions out of one artifact become its ``failed``
outcome (with the reason), so one artifact never stops the others.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from dockyard.replication.endpoints import Endpoint, ManifestCopy

log = logging.getLogger("dockyard.replication")

COPIED: Final = "copied"
SKIPPED: Final = "skipped"
DELETED: Final = "deleted"
FAILED: Final = "failed"
SIGNATURE_TAG = re.compile(r"^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})\.(sig|att|sbom)$")
MAX_REFERRERS = 100
_NOT_SHIPPED = ("foreign", "nondistributable")
MountHints = Callable[[str], Awaitable[list[str]]]
"""Blob digest → repositories of the destination that probably hold it (tried as mount sources)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one artifact: ``source``/``destination`` are ``repo:tag`` or ``repo@digest``."""

    source: str
    destination: str
    digest: str | None
    result: str
    reason: str | None = None
    bytes: int = 0


def signature_subject(tag: str) -> str | None:
    """The digest a cosign tag (``sha256-<hex>.sig``) is about, or None for any other tag."""
    match = SIGNATURE_TAG.match(tag)
    return None if match is None else f"{match.group(1)}:{match.group(2)}"


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:1000]


class Copier:
    """Copies from ``source`` to ``destination`` for one run; remembers which destination repository received
    which blob, for mounts."""

    def __init__(
        self, source: Endpoint, destination: Endpoint, limit: int | None = None, mount_hints: MountHints | None = None
    ) -> None:
        self.source = source
        self.destination = destination
        self.limit = limit  # bytes per second per transfer, None: no limit
        self.mount_hints = mount_hints
        self._placed: dict[str, str] = {}  # blob digest → destination repository that has it

    async def copy_tag(self, src: str, dst: str, tag: str, source_tags: list[str]) -> list[Outcome]:
        """Copy image ``src:tag`` to ``dst:tag`` and its referrers (``source_tags``: the source repository's tags,
        for cosign's). The image's outcome first, then one per referrer."""
        try:
            manifest = await self.source.manifest(src, tag)
            if manifest is None:
                return [Outcome(f"{src}:{tag}", f"{dst}:{tag}", None, SKIPPED, "the source no longer has this tag")]
            sent = 0
            if await self.destination.manifest_digest(dst, tag) == manifest.digest:
                result = SKIPPED
            else:
                sent = await self._copy_tree(src, dst, manifest, tag)
                result = COPIED
            outcome = Outcome(f"{src}:{tag}", f"{dst}:{tag}", manifest.digest, result, bytes=sent)
        except Exception as exc:
            log.info("replication: %s:%s → %s failed: %s", src, tag, dst, exc)
            return [Outcome(f"{src}:{tag}", f"{dst}:{tag}", None, FAILED, _reason(exc))]
        return [outcome, *await self.copy_referrers(src, dst, manifest.digest, source_tags)]

    async def copy_referrers(self, src: str, dst: str, digest: str, source_tags: list[str]) -> list[Outcome]:
        """Copy the referrers of ``src@digest`` (OCI referrers and cosign tags) that ``dst`` lacks."""
        outcomes: list[Outcome] = []
        cosign = [tag for tag in source_tags if signature_subject(tag) == digest]
        for tag in cosign:
            outcomes.extend(await self._copy_one(src, dst, tag))
        try:
            referrers = await self.source.referrers(src, digest)
        except Exception as exc:
            return [*outcomes, Outcome(f"{src}@{digest}", dst, digest, FAILED, f"referrers not listed: {_reason(exc)}")]
        for descriptor in referrers[:MAX_REFERRERS]:
            referrer = str(descriptor.get("digest", ""))
            if ":" in referrer:
                outcomes.extend(await self._copy_one(src, dst, referrer))
        return outcomes

    async def _copy_one(self, src: str, dst: str, reference: str) -> list[Outcome]:
        sep = "@" if ":" in reference else ":"
        where = f"{src}{sep}{reference}", f"{dst}{sep}{reference}"
        try:
            manifest = await self.source.manifest(src, reference)
            if manifest is None:
                return [Outcome(*where, None, SKIPPED, "the source no longer has it")]
            if await self.destination.manifest_digest(dst, reference) == manifest.digest:
                return [Outcome(*where, manifest.digest, SKIPPED)]
            sent = await self._copy_tree(src, dst, manifest, reference)
            return [Outcome(*where, manifest.digest, COPIED, bytes=sent)]
        except Exception as exc:
            return [Outcome(*where, None, FAILED, _reason(exc))]

    async def _copy_tree(self, src: str, dst: str, manifest: ManifestCopy, reference: str) -> int:
        """Put ``manifest`` at ``dst`` under ``reference`` after everything it names; returns the bytes sent."""
        try:
            doc: Any = json.loads(manifest.content)
        except ValueError as exc:
            raise ValueError(f"manifest {manifest.digest} is not JSON") from exc
        if not isinstance(doc, dict):
            raise ValueError(f"manifest {manifest.digest} is not a JSON object")
        sent = 0
        children = doc.get("manifests")
        if isinstance(children, list):
            for child in children:
                digest = str(child.get("digest", "")) if isinstance(child, dict) else ""
                if not digest or await self.destination.manifest_digest(dst, digest) == digest:
                    continue
                copy = await self.source.manifest(src, digest)
                if copy is None:
                    raise ValueError(f"the source lacks {digest}, a manifest of index {manifest.digest}")
                sent += await self._copy_tree(src, dst, copy, digest)
        else:
            blobs = [doc.get("config"), *(doc.get("layers") or []), *(doc.get("blobs") or [])]
            for blob in blobs:
                if not isinstance(blob, dict) or ":" not in str(blob.get("digest", "")):
                    continue
                if any(marker in str(blob.get("mediaType", "")) for marker in _NOT_SHIPPED):
                    continue
                sent += await self._copy_blob(src, dst, str(blob["digest"]), int(blob.get("size") or 0))
        await self.destination.put_manifest(dst, reference, manifest)
        return sent + len(manifest.content)

    async def _copy_blob(self, src: str, dst: str, digest: str, size: int) -> int:
        if await self.destination.has_blob(dst, digest):
            self._placed.setdefault(digest, dst)
            return 0
        candidates = [self._placed[digest]] if digest in self._placed else []
        if self.mount_hints is not None:
            candidates += [name for name in await self.mount_hints(digest) if name not in candidates]
        for elsewhere in candidates[:3]:
            if elsewhere != dst and await self.destination.mount(dst, digest, elsewhere):
                self._placed.setdefault(digest, elsewhere)
                return 0
        async with self.source.open_blob(src, digest) as chunks:
            await self.destination.put_blob(dst, digest, size, self._metered(chunks))
        self._placed[digest] = dst
        return size

    async def _metered(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``chunks`` passed on, no faster than ``limit`` bytes per second."""
        started = time.monotonic()
        passed = 0
        async for chunk in chunks:
            yield chunk
            passed += len(chunk)
            if self.limit:
                ahead = passed / self.limit - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)

    async def delete_tag(self, src: str, dst: str, tag: str) -> Outcome:
        """Replicate the deletion of ``src:tag``: remove ``dst:tag`` unless the source has the tag again."""
        where = f"{src}:{tag}", f"{dst}:{tag}"
        try:
            if await self.source.manifest_digest(src, tag) is not None:
                return Outcome(*where, None, SKIPPED, "the source has this tag again")
            digest = await self.destination.manifest_digest(dst, tag)
            if digest is None:
                return Outcome(*where, None, SKIPPED, "the destination has no such tag")
            await self.destination.delete_tag(dst, tag)
            return Outcome(*where, digest, DELETED)
        except Exception as exc:
            return Outcome(*where, None, FAILED, _reason(exc))
