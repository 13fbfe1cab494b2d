"""A test double of ``dockyard.vulns.scanner.InventorySource``: the packages of each image manifest are what the
test wrote to ``<data_dir>/inventory-fixture.json`` (``{digest: [InstalledPackage fields…]}``), or the error its
inventory failed with (``{digest: {"error": "…"}}``, from ``write_inventory_failure``). A server uses it with
``DOCKYARD_VULNS_INVENTORY_SOURCE=tests.support.vuln_inventory:FixtureInventory``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from dockyard.db.engine import Database
from dockyard.inventory.model import InstalledPackage
from dockyard.settings import Settings

FILE = "inventory-fixture.json"


class FixtureInventory:
    def __init__(self, settings: Settings, db: Database) -> None:
        self.path = settings.data_dir / FILE

    def _entry(self, manifest_digest: str) -> Any:
        return json.loads(self.path.read_text()).get(manifest_digest) if self.path.exists() else None

    async def packages(self, manifest_digest: str) -> list[InstalledPackage] | None:
        entries = self._entry(manifest_digest)
        return [InstalledPackage(**e) for e in entries] if isinstance(entries, list) else None

    async def failure(self, manifest_digest: str) -> str | None:
        entry = self._entry(manifest_digest)
        return str(entry["error"]) if isinstance(entry, dict) else None


def _update(data_dir: Path, entries: dict[str, Any]) -> None:
    path = data_dir / FILE
    path.parent.mkdir(parents=True, exist_ok=True)  # a scale-out server keeps nothing there of its own
    current: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    current.update(entries)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(current))
    partial.replace(path)  # a scan job reading it meanwhile sees the old file or the new one, never half of one


def write_inventory(data_dir: Path, images: dict[str, list[InstalledPackage]]) -> None:
    _update(data_dir, {digest: [asdict(p) for p in packages] for digest, packages in images.items()})


def write_inventory_failure(data_dir: Path, digest: str, error: str) -> None:
    """Image manifest ``digest``'s inventory failed with ``error``: it has no packages and cannot be scanned."""
    _update(data_dir, {digest: {"error": error}})
