"""The shared dependencies of the registry services (built once in the composition root)."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.db.engine import Database
from dockyard.settings import Settings
from dockyard.storage.base import BlobStore


@dataclass(frozen=True, slots=True)
class RegistryContext:
    db: Database
    store: BlobStore
    settings: Settings
