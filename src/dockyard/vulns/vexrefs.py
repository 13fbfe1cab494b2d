"""OpenVEX documents attached to an image as OCI referrers, read for that image's report and pull decision.

A referrer of the image (a manifest in the same repository whose ``subject`` is the image manifest) carries an
OpenVEX document when its ``artifactType`` is ``application/vnd.openvex+json`` (what ``oras attach``, ``cosign
attach`` and ``vexctl`` users set), or when one of its layers has that media type; the document is the layer of that
type, else (for an artifact typed OpenVEX) its first JSON layer. It is parsed with the namespace upload's parser
(``suppress.parse_openvex``) and its statements apply to that image only (its digest, an OCI purl of it, or its
packages' purls as products): another image with the same packages is not covered by it.

Documents are read with ``BlobService.read_small`` (at most ``MAX_VEX_BYTES``), parsed once per blob digest and
cached in the process (content-addressed, so never stale). A document that is not valid OpenVEX, too large or
unreadable is skipped and logged: an image's report never fails because of what someone attached to it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.jsonparse import loads_limited
from dockyard.core.manifest import parse_manifest
from dockyard.errors import DomainError
from dockyard.models import Manifest, Repository
from dockyard.registry.blobs import BlobService
from dockyard.vulns.suppress import Suppressions, VexStatement, parse_openvex

log = logging.getLogger("dockyard.vulns")

OPENVEX: Final = "application/vnd.openvex+json"
MAX_VEX_BYTES: Final = 1024 * 1024
MAX_REFERRERS: Final = 50  # VEX-carrying referrers read per image (the newest)
_JSON_LAYERS: Final = frozenset({OPENVEX, "application/json"})
_CACHE_SIZE: Final = 2000


def vex_layer(media_type: str, content: bytes) -> tuple[str, int] | None:
    """(blob digest, size) of the OpenVEX document a referrer manifest carries, or None if it carries none."""
    try:
        parsed = parse_manifest(content, media_type)
    except DomainError:
        return None
    if parsed.is_index:
        return None
    layers = list(parsed.layers)
    for layer in layers:
        if layer.media_type == OPENVEX:
            return str(layer.digest), layer.size
    if parsed.referrer_artifact_type == OPENVEX:
        for layer in layers:
            if layer.media_type in _JSON_LAYERS:
                return str(layer.digest), layer.size
    return None


class ReferrerVex:
    """One per process: the VEX statements attached to images, cached per document blob."""

    def __init__(self, blobs: BlobService) -> None:
        self.blobs = blobs
        self._parsed: dict[str, list[VexStatement]] = {}

    async def statements(self, conn: AsyncConnection, repository: str, image: str) -> list[VexStatement]:
        """The statements of the OpenVEX referrers of image manifest ``image`` in ``repository``."""
        rows = await conn.execute(
            select(Manifest.media_type, Manifest.content, Manifest.digest)
            .join(Repository, Repository.id == Manifest.repository_id)
            .where(Repository.name == repository, Manifest.subject_digest == image)
            .order_by(Manifest.created_at.desc(), Manifest.id.desc())
            .limit(MAX_REFERRERS * 4)
        )
        found: list[VexStatement] = []
        documents = 0
        for media_type, content, referrer in rows.all():
            layer = vex_layer(media_type, content)
            if layer is None:
                continue
            documents += 1
            if documents > MAX_REFERRERS:
                break
            found.extend(await self._document(*layer, referrer=referrer))
        return found

    async def with_referrers(
        self, conn: AsyncConnection, suppressions: Suppressions, repository: str, image: str
    ) -> Suppressions:
        """``suppressions`` (the namespace's) plus the VEX attached to ``image`` in ``repository``."""
        attached = await self.statements(conn, repository, image)
        if not attached:
            return suppressions
        return Suppressions([*suppressions.statements, *attached], suppressions.allowlist)

    async def _document(self, digest: str, size: int, *, referrer: str) -> list[VexStatement]:
        cached = self._parsed.get(digest)
        if cached is not None:
            return cached
        if size > MAX_VEX_BYTES:
            log.info("OpenVEX referrer %s skipped: its document is %d bytes", referrer, size)
            statements: list[VexStatement] = []
        else:
            read = await self._read(digest, size, referrer)
            if read is None:
                return []  # missing, or storage failing (logged by read_small): read again next time
            statements = read
        if len(self._parsed) >= _CACHE_SIZE:
            self._parsed.clear()
        self._parsed[digest] = statements
        return statements

    async def _read(self, digest: str, size: int, referrer: str) -> list[VexStatement] | None:
        data = await self.blobs.read_small(digest, size)
        if data is None:
            return None
        try:
            doc: Any = loads_limited(data)
            document, statements = parse_openvex(doc)
        except (ValueError, RecursionError, DomainError) as exc:
            log.info("OpenVEX referrer %s skipped: %s", referrer, getattr(exc, "message", exc))
            return []
        source = f"OpenVEX {document or digest} attached to the image"
        return [replace(s, source=source[:300]) for s in statements]
