"""An image's SBOM as the API and the web hub serve it: the inventory's state (queued when never computed) and,
once ready, the document in SPDX 2.3 or CycloneDX 1.6 JSON — one code path for both surfaces."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from dockyard.inventory.documents import CYCLONEDX_MEDIA_TYPE, SbomSubject, cyclonedx_json, spdx_json
from dockyard.inventory.model import SPDX_MEDIA_TYPE
from dockyard.inventory.service import FAILED, READY, ImageTarget, InventoryService, InventoryState
from dockyard.layers.images import ImagePlatform

SbomFormat = Literal["spdx", "cyclonedx"]
MEDIA_TYPES: dict[str, str] = {"spdx": SPDX_MEDIA_TYPE, "cyclonedx": CYCLONEDX_MEDIA_TYPE}


@dataclass(frozen=True, slots=True)
class ImageSbom:
    """``state`` of the image's inventory; ``subject`` (the packages) only when it is ready."""

    state: InventoryState
    subject: SbomSubject | None

    @property
    def failed(self) -> bool:
        return self.state.state == FAILED


async def image_sbom(inventory: InventoryService, image: ImagePlatform) -> ImageSbom:
    """The SBOM subject of ``image`` (already authorized by whoever resolved it), requesting its inventory when it
    was never computed (or by older detectors)."""
    target = ImageTarget(image.digest, image.config_digest, image.layer_digests)
    state = await inventory.request(image.repository, target)
    packages = await inventory.packages(image.digest) if state.state == READY else None
    if packages is None:
        return ImageSbom(state, None)
    subject = SbomSubject(
        repository=image.repository,
        digest=image.digest,
        platform=image.platform,
        os=state.os,
        packages=packages,
        created=state.finished_at or datetime.now(UTC),
    )
    return ImageSbom(state, subject)


async def render_sbom(subject: SbomSubject, format_: SbomFormat, base_url: str) -> tuple[bytes, str]:
    """The document and its media type. ``base_url`` (the server's, no trailing slash) makes SPDX's document
    namespace; the rendering runs on a thread (large images have thousands of packages)."""
    if format_ == "cyclonedx":
        return await asyncio.to_thread(cyclonedx_json, subject), CYCLONEDX_MEDIA_TYPE
    namespace = f"{base_url}/spdx/{subject.repository}/{subject.digest}"
    return await asyncio.to_thread(spdx_json, subject, namespace), SPDX_MEDIA_TYPE
