"""The registry services bundled for the HTTP layer; built once per app by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.registry.access import RegistryAccess
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.registry.gc import GarbageCollector
from dockyard.registry.listing import ListingService
from dockyard.registry.manifests import ManifestService
from dockyard.registry.uploads import UploadService


@dataclass(frozen=True, slots=True)
class Registry:
    ctx: RegistryContext
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    listing: ListingService
    gc: GarbageCollector
    access: RegistryAccess

    @classmethod
    def build(cls, ctx: RegistryContext) -> Registry:
        blobs = BlobService(ctx)
        return cls(
            ctx,
            blobs,
            UploadService(ctx, blobs),
            ManifestService(ctx),
            ListingService(ctx),
            GarbageCollector(ctx),
            RegistryAccess(ctx.db, default_private=ctx.settings.default_private),
        )
