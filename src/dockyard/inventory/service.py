"""``InventoryService``: the SBOM inventory of image platforms — computed in the background (``inventory.compute``,
``dockyard.inventory.tasks``), stored per image manifest digest in ``image_inventories``/``image_packages``, read
by the SBOM routes and by vulnerability matching (``packages``).

Computing an image: its layers' file indexes (``LayerIndexer.ensure``: built, or waited for, if the
``layers.index`` job has not got there yet), each layer's records (``LayerInventories.ensure``: once per layer
digest), then the merge under whiteouts (``dockyard.inventory.image``), written in one transaction. A layer that
cannot be read (not a tar, corrupt stream, malformed package database) or is gone ends the image's inventory
as ``failed`` with the error recorded; a storage failure raises, and the job retries.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.manifest import parse_manifest
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore, insert_or_nothing
from dockyard.errors import DomainError, Invalid, NotFound
from dockyard.inventory.image import SymlinkLoop, merge_image
from dockyard.inventory.layer import VERSION, LayerInventories
from dockyard.inventory.model import InstalledPackage
from dockyard.inventory.records import OsRelease
from dockyard.jobs.queue import enqueue
from dockyard.layers.index import LayerIndexer
from dockyard.layers.tasks import image_order
from dockyard.models import ImageInventory, ImagePackage, Manifest, Repository
from dockyard.models.base import utcnow
from dockyard.registry.blobs import BlobService
from dockyard.repos.access import IMAGE_CONFIG_TYPES

log = logging.getLogger("dockyard.inventory")

COMPUTE = "inventory.compute"
PENDING, READY, FAILED = "pending", "ready", "failed"


class InventoryBusy(Exception):
    """Another computation of this image's inventory is under way (it marked the image pending after this one
    finished): not a failure — try again shortly (a job raising it is retried)."""


MAX_ERROR = 1000


@dataclass(frozen=True, slots=True)
class InventoryState:
    """An image's inventory: ``state`` ``pending``, ``ready`` or ``failed`` (``error``); ``os`` the distribution
    its ``os-release`` names."""

    digest: str
    state: str
    error: str | None
    os: OsRelease | None
    packages: int
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ImageTarget:
    """An image platform to inventory: its manifest digest, config digest and layers (bottom first)."""

    digest: str
    config_digest: str
    layers: tuple[str, ...]


async def enqueue_compute(conn: AsyncConnection, repository: str, digest: str) -> None:
    """Compute the inventory of image manifest ``repository@digest`` soon (once per repository and digest while
    queued: the job also attaches the SBOM referrer in that repository; the inventory itself is computed once)."""
    payload = {"repository": repository, "digest": digest}
    where = hashlib.sha256(repository.encode()).hexdigest()[:32]  # a name may be 255 characters, the key too
    await enqueue(conn, COMPUTE, payload, dedupe_key=f"{COMPUTE}:{digest}:{where}", ordering_key=image_order(digest))


_STATE_COLUMNS = (
    ImageInventory.digest,
    ImageInventory.state,
    ImageInventory.error,
    ImageInventory.os_id,
    ImageInventory.os_version,
    ImageInventory.os_name,
    ImageInventory.packages,
    ImageInventory.finished_at,
)
_PACKAGE_COLUMNS = (
    ImagePackage.ecosystem,
    ImagePackage.name,
    ImagePackage.version,
    ImagePackage.purl,
    ImagePackage.layer,
    ImagePackage.path,
    ImagePackage.release,
    ImagePackage.source_name,
    ImagePackage.source_version,
)


def _recorded_os(os_id: str | None, os_version: str | None, os_name: str | None) -> OsRelease | None:
    """The distribution as an inventory's row records it (no codename)."""
    return OsRelease(os_id, os_version, None, os_name) if os_id else None


def _state(row: Any) -> InventoryState | None:
    if row is None:
        return None
    os = _recorded_os(row.os_id, row.os_version, row.os_name)
    return InventoryState(row.digest, row.state, row.error, os, row.packages, row.finished_at)


class InventoryService:
    """One per process. ``tmp_dir`` (under the data directory) holds the short-lived spools of Java archives and
    RPM databases."""

    def __init__(self, db: Database, blobs: BlobService, indexer: LayerIndexer, *, tmp_dir: Path | None) -> None:
        self.db = db
        self.indexer = indexer
        self.layers = LayerInventories(db, blobs, tmp_dir=tmp_dir)

    async def state(self, digest: str) -> InventoryState | None:
        """The inventory of image manifest ``digest``, or None if none was ever requested."""
        return (await self._known(digest))[0]

    async def _known(self, digest: str) -> tuple[InventoryState | None, bool]:
        """``state(digest)``, and whether the current detectors made it (one read)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(*_STATE_COLUMNS, ImageInventory.version).where(ImageInventory.digest == digest)
                )
            ).first()
        return _state(row), row is not None and row.version is not None and row.version >= VERSION

    async def packages(self, digest: str) -> list[InstalledPackage] | None:
        """The packages of image manifest ``digest`` (an image platform, not an index), in (ecosystem, name,
        version, path) order; None unless its inventory is ready (pending, failed, or never computed)."""
        async with self.db.read(consistent=True) as conn:
            state = (
                await conn.execute(select(ImageInventory.state).where(ImageInventory.digest == digest))
            ).scalar_one_or_none()
            if state != READY:
                return None
            rows = await conn.execute(
                select(*_PACKAGE_COLUMNS).where(ImagePackage.image_digest == digest).order_by(ImagePackage.seq)
            )
            return [InstalledPackage(**row._asdict()) for row in rows]

    async def failure(self, digest: str) -> str | None:
        """The recorded error of image manifest ``digest``'s inventory, if it failed."""
        state = await self.state(digest)
        return state.error or "the inventory failed" if state is not None and state.state == FAILED else None

    async def request(self, repository: str, target: ImageTarget) -> InventoryState:
        """The inventory of ``target`` (in ``repository``), queueing its computation if it was never computed
        (pushed before this feature) or by older detectors."""
        known, current = await self._known(target.digest)
        if known is not None and (known.state == PENDING or current):
            return known
        async with self.db.write() as conn:
            await self._pending(conn, target)
            await enqueue_compute(conn, repository, target.digest)
        return InventoryState(target.digest, PENDING, None, None, 0, None)

    async def _pending(self, conn: AsyncConnection, target: ImageTarget) -> None:
        values = {"state": PENDING, "error": None, "version": VERSION, "finished_at": None}
        inserted = await insert_ignore(
            conn,
            ImageInventory,
            {"digest": target.digest, "config_digest": target.config_digest, "packages": 0, **values},
        )
        if not inserted:
            await conn.execute(update(ImageInventory).where(ImageInventory.digest == target.digest).values(**values))

    async def target(self, repository: str, digest: str) -> ImageTarget | None:
        """The image platform ``repository@digest`` names; None if it is gone, an index or not an image."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(Manifest.media_type, Manifest.content)
                    .join(Repository, Repository.id == Manifest.repository_id)
                    .where(Repository.name == repository, Manifest.digest == digest)
                )
            ).first()
        if row is None:
            return None
        try:
            parsed = parse_manifest(row.content, row.media_type)
        except DomainError:
            return None
        if parsed.is_index or parsed.config is None or parsed.config.media_type not in IMAGE_CONFIG_TYPES:
            return None
        layers = tuple(str(layer.digest) for layer in parsed.layers if not layer.is_foreign)
        return ImageTarget(digest, str(parsed.config.digest), layers)

    async def compute(self, repository: str, digest: str) -> InventoryState | None:
        """Compute (again, if older detectors did) the inventory of image manifest ``repository@digest``; None
        if it is not an image (any more). Raises ``StorageError`` (retry later); every other failure is recorded."""
        target = await self.target(repository, digest)
        if target is None:
            return None
        return await self.compute_target(target)

    async def compute_target(self, target: ImageTarget) -> InventoryState | None:
        """``compute`` for an image platform already looked up (``target``); None if it is gone meanwhile."""
        digest = target.digest
        known, current = await self._known(digest)
        if known is not None and known.state in (READY, FAILED) and current:
            return known
        try:
            async with self.db.write() as conn:
                await self._pending(conn, target)
        except IntegrityError:
            return None  # the config blob was collected: the image is gone
        error: str | None = None
        for layer in dict.fromkeys(target.layers):
            try:
                await self.indexer.ensure(layer)
                await self.layers.ensure(layer)
            except (Invalid, NotFound) as exc:
                error = f"layer {layer}: {exc.message}"[:MAX_ERROR]
                break
        if error is None:
            try:
                async with self.db.read(consistent=True) as conn:
                    records = await self.layers.records(conn, list(target.layers))
                    result = await merge_image(conn, target.layers, records)
            except SymlinkLoop as exc:
                error = str(exc)[:MAX_ERROR]
        if error is not None:
            return await self._finish(target, error=error)
        return await self._finish(target, os=result.os, packages=result.packages)

    async def _finish(
        self,
        target: ImageTarget,
        *,
        error: str | None = None,
        os: OsRelease | None = None,
        packages: list[InstalledPackage] | None = None,
    ) -> InventoryState:
        """Record the inventory's outcome; returns the state recorded (built here, not read back)."""
        found = packages or []
        os_id = os.id[:64] if os else None
        os_version = (os.version_id or "")[:64] or None if os else None
        os_name = os.pretty_name if os else None
        recorded = _recorded_os(os_id, os_version, os_name)  # as ``state`` would read it back
        finished = InventoryState(
            target.digest, FAILED if error is not None else READY, error, recorded, len(found), utcnow()
        )
        async with self.db.write() as conn:
            await conn.execute(delete(ImagePackage).where(ImagePackage.image_digest == target.digest))
            if found:
                values = [
                    {
                        "image_digest": target.digest,
                        "seq": seq,
                        "ecosystem": p.ecosystem,
                        "name": p.name,
                        "version": p.version,
                        "purl": p.purl,
                        "layer": p.layer,
                        "path": p.path,
                        "release": p.release,
                        "source_name": p.source_name,
                        "source_version": p.source_version,
                    }
                    for seq, p in enumerate(found)
                ]
                statement = insert_or_nothing(conn, ImagePackage)
                for start in range(0, len(values), 1000):
                    await conn.execute(statement, values[start : start + 1000])
            await conn.execute(
                update(ImageInventory)
                .where(ImageInventory.digest == target.digest)
                .values(
                    state=finished.state,
                    error=error,
                    version=VERSION,
                    os_id=os_id,
                    os_version=os_version,
                    os_name=os_name,
                    packages=finished.packages,
                    finished_at=finished.finished_at,
                )
            )
        if error is not None:
            log.info("inventory of %s failed: %s", target.digest, error)
        return finished
