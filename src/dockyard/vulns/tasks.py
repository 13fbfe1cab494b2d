"""Scanning in the background and the scheduled sync of vulnerability data.

- The ``vulns.scan`` job scans an image when its inventory is available and retries (with backoff, for a while)
  when it is not yet: how a push scanned an image before a pushed image's analysis (``dockyard.analysis.tasks``,
  whose last step is the scan) did it; run for jobs queued then.
- ``sync_sources`` is the periodic job ``vulndb.sync`` (only when ``vulndb_sources`` is set): each URL imported in
  its own transaction, then the images holding changed packages re-matched.
- ``inventory_source(settings, db, registry)`` builds the ``InventorySource``: the SBOM inventory, or the one
  ``vulns_inventory_source`` names.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field

import httpx

from dockyard.db.engine import Database
from dockyard.errors import DomainError
from dockyard.inventory.tasks import inventory_service
from dockyard.jobs.handlers import Handler, JobContext, Retry
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.registry.context import RegistryContext
from dockyard.settings import Settings, SettingsError
from dockyard.vulns.scanner import InventorySource, NoInventory, Scanner, ScanObserver
from dockyard.vulns.vulndb import VulnDatabase

log = logging.getLogger("dockyard.vulns")

SCAN = "vulns.scan"
SCAN_ATTEMPTS = 12  # runs of a scan (or an analysis) while the image's inventory is not available


def inventory_source(settings: Settings, db: Database, registry: RegistryContext | None = None) -> InventorySource:
    """Where scans get an image's packages: the SBOM inventory (``dockyard.inventory``) over ``registry``'s blobs.
    ``vulns_inventory_source = "module:factory"`` names another source (``factory(settings, db)``: tests hand
    fixture packages this way). Without either (a command that only re-matches stored packages), ``NoInventory``."""
    spec = settings.vulns_inventory_source
    if not spec:
        return inventory_service(registry) if registry is not None else NoInventory()
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SettingsError(f"vulns_inventory_source: cannot load {spec!r}: {exc}") from exc
    source: InventorySource = factory(settings, db)
    return source


@register(SCAN)
def scan(env: JobEnvironment) -> Handler:
    registry = RegistryContext(db=env.db, store=env.store, settings=env.settings)
    scanner = Scanner(env.db, inventory_source(env.settings, env.db, registry))

    async def handle(job: JobContext) -> None:
        if await scanner.scan(str(job.payload["digest"])) is None:
            raise Retry(None, "the image's inventory is not available yet")

    return handle


@dataclass
class SyncReport:
    imported: dict[str, int] = field(default_factory=dict)  # source → advisories changed
    failed: dict[str, str] = field(default_factory=dict)
    rematched: int = 0


async def sync_sources(
    db: Database, settings: Settings, scanner: Scanner, *, observer: ScanObserver | None = None
) -> SyncReport:
    """Import every ``vulndb_sources`` URL (each atomically: a failed one keeps its previous data and records its
    error), then re-match the images holding changed packages."""
    report = SyncReport()
    vulndb = VulnDatabase(db)
    keys = set()
    async with httpx.AsyncClient(timeout=settings.vulndb_sync_timeout_seconds, follow_redirects=True) as client:
        for url in settings.vulndb_sources:
            try:
                result = await vulndb.import_url(url, client)
            except (DomainError, OSError, ValueError) as exc:
                log.warning("vulndb sync of %s failed: %s", url, exc)
                report.failed[url] = str(exc)
                continue
            if observer is not None:
                observer.import_finished(result.seconds)
            report.imported[url] = result.changed
            keys.update(result.keys)
    if keys:
        report.rematched = await scanner.rematch(keys)
    log.info("vulndb sync: %s", report)
    return report
