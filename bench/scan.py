"""``python -m bench.run --config scan``: the cost of SBOMs and vulnerability matching (issue 16), in process.

The services of ``dockyard serve`` (``InventoryService``, ``VulnDatabase``, ``Scanner``) over a fresh SQLite
database and filesystem store in a temporary directory — no HTTP, so the figures are the work itself:

1. **SBOM, cold**: a Debian-like image — a base layer holding ``os-release``, a dpkg ``status`` of ``--packages``
   installed packages (with source packages) and ``--files`` other files, and a layer of Python distributions —
   pushed, then its inventory computed: both layers indexed and read.
2. **SBOM, shared base**: a second image of the same base layer and a small layer of its own: only the new layer
   is indexed and read; the base's records are reused.
3. **Import** of a generated OSV database of ``--advisories`` advisories (Debian 12, real schema, in an
   ``all.zip``): about one in twenty names a package the images hold, the others packages they do not.
4. **Match**: the first image's packages against that database (a scan: look-up, version comparison, findings
   written).
5. **Re-match after an import touching 1 % of packages**: a newer export changes the advisories of 1 % of the
   installed source packages; the import and the re-match of only the images holding them (``--images`` scanned
   images of which each holds a random half of the packages), against re-matching every image.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.core.digest import Digest
from dockyard.db.engine import Database
from dockyard.inventory.model import InstalledPackage
from dockyard.inventory.service import InventoryService
from dockyard.inventory.tasks import inventory_service
from dockyard.migrations.runner import upgrade
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.registry.uploads import ChunkSpec
from dockyard.settings import Settings
from dockyard.storage.filesystem import FilesystemBlobStore
from dockyard.vulns.matching import IndexedPackage
from dockyard.vulns.scanner import Scanner
from dockyard.vulns.vulndb import VulnDatabase

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
REPO = "bench/debian"


@dataclass(frozen=True)
class ScanParams:
    packages: int = 400  # a bookworm image with a few tools; mmdebstrap's "essential" has ~90, "standard" ~300
    files: int = 20_000
    python: int = 60
    advisories: int = 100_000
    images: int = 50
    seed: int = 16


@dataclass
class ScanResults:
    figures: dict[str, float] = field(default_factory=dict)  # name -> seconds or count
    errors: list[str] = field(default_factory=list)


def _tar(files: Iterable[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _names(count: int) -> list[tuple[str, str, str]]:
    """(binary package, source package, version) for ``count`` installed Debian packages: about three binaries
    per source, as in Debian."""
    found = []
    for i in range(count):
        source = f"src{i // 3:04d}"
        found.append((f"lib{source}-{i % 3}", source, f"1.{i % 7}.{i % 11}-{1 + i % 4}+deb12u1"))
    return found


def _status(packages: list[tuple[str, str, str]]) -> bytes:
    return "\n".join(
        f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nSource: {source}\nVersion: {version}\n"
        "Description: a package\n of the benchmark\n"
        for name, source, version in packages
    ).encode()


def base_layer(params: ScanParams, packages: list[tuple[str, str, str]]) -> bytes:
    rng = random.Random(params.seed)
    files = [("etc/os-release", OS_RELEASE), ("var/lib/dpkg/status", _status(packages))]
    files += [(f"usr/share/doc/pkg{i % 500}/file{i}.txt", rng.randbytes(64)) for i in range(params.files)]
    return _tar(files)


def python_layer(params: ScanParams, salt: str) -> bytes:
    files = []
    for i in range(params.python):
        name = f"dist{i}{salt}"
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.{i}.0\n\n".encode()
        files.append((f"usr/lib/python3/dist-packages/{name}-1.{i}.0.dist-info/METADATA", metadata))
    return _tar(files)


def _advisory(ident: str, package: str, fixed: str, modified: str) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": modified,
        "aliases": [f"CVE-2099-{ident[-6:]}"],
        "summary": f"an issue in {package}",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                "ecosystem_specific": {"urgency": "medium"},
            }
        ],
    }


def advisories_zip(path: Path, docs: Iterable[dict[str, Any]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for doc in docs:
            archive.writestr(f"{doc['id']}.json", json.dumps(doc))
    return path


def database(
    params: ScanParams, sources: list[str], modified: str, touched: set[str] | None = None
) -> Iterable[dict[str, Any]]:
    """``params.advisories`` advisories: one in twenty about an installed source package (fixed above or below
    its versions), the rest about packages no image holds. With ``touched``, only the advisories of those sources,
    modified at ``modified``."""
    for i in range(params.advisories):
        if i % 20 == 0:
            package = sources[(i // 20) % len(sources)]
            fixed = "9.9-1" if i % 40 == 0 else "0.1-1"
        else:
            package = f"other{i % 30_000:05d}"
            fixed = "2.0-1"
        if touched is not None and package not in touched:
            continue
        yield _advisory(f"DEBIAN-BENCH-{i:06d}", package, fixed, modified)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class FixedInventory:
    """The bench's synthetic images (an ``InventorySource``): the real inventory for pushed images, else the
    packages given."""

    def __init__(self, real: InventoryService) -> None:
        self.real = real
        self.synthetic: dict[str, list[InstalledPackage]] = {}

    async def packages(self, manifest_digest: str) -> list[InstalledPackage] | None:
        if manifest_digest in self.synthetic:
            return self.synthetic[manifest_digest]
        return await self.real.packages(manifest_digest)

    async def failure(self, manifest_digest: str) -> str | None:
        return await self.real.failure(manifest_digest)


async def _push(registry: Registry, layers: list[bytes], tag: str) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    for blob in (config, *layers):
        digest = Digest.of(blob)
        await registry.uploads.monolithic(REPO, digest, _one(blob), ChunkSpec(None, len(blob)))
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": str(Digest.of(config)), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": str(Digest.of(b)), "size": len(b)} for b in layers],
        }
    ).encode()
    await registry.manifests.put(REPO, tag, body, OCI_MANIFEST)
    return str(Digest.of(body))


async def _timed(results: ScanResults, name: str, work: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = await work()
    results.figures[name] = time.perf_counter() - started
    print(f"  {name}: {results.figures[name]:.3f} s", flush=True)
    return value


async def run_scan(params: ScanParams, workdir: Path) -> ScanResults:
    results = ScanResults()
    db = Database(f"sqlite+aiosqlite:///{workdir / 'dockyard.db'}")
    store = FilesystemBlobStore(workdir / "storage", fsync=False)
    try:
        await upgrade(db)
        ctx = RegistryContext(db=db, store=store, settings=Settings(data_dir=workdir, open=True))
        registry = Registry.build(ctx)
        inventory = inventory_service(ctx)
        packages = _names(params.packages)
        sources = sorted({source for _, source, _ in packages})
        base = base_layer(params, packages)
        first = await _push(registry, [base, python_layer(params, "a")], "one")
        second = await _push(registry, [base, python_layer(params, "b")], "two")
        results.figures["base layer, MiB compressed"] = len(base) / 2**20

        state = await _timed(results, "SBOM cold (index + read both layers)", lambda: inventory.compute(REPO, first))
        if state is None or state.state != "ready":
            results.errors.append(f"the first image's inventory did not finish: {state}")
            return results
        results.figures["packages found"] = state.packages
        state = await _timed(results, "SBOM sharing the base layer", lambda: inventory.compute(REPO, second))
        if state is None or state.state != "ready":
            results.errors.append(f"the second image's inventory did not finish: {state}")
            return results

        vulndb = VulnDatabase(db)
        archive = advisories_zip(workdir / "all.zip", database(params, sources, "2026-01-01T00:00:00Z"))
        imported = await _timed(results, "import of the advisories", lambda: vulndb.import_path(archive))
        results.figures["advisories imported"] = imported.changed

        source = FixedInventory(inventory)
        scanner = Scanner(db, source)
        scan = await _timed(results, "match one image (scan)", lambda: scanner.scan(first))
        results.figures["findings"] = len(scan.findings)
        installed = await inventory.packages(first) or []
        rng = random.Random(params.seed)
        for index in range(params.images):
            digest = f"sha256:{index:064x}"
            source.synthetic[digest] = rng.sample(installed, len(installed) // 2)
            await scanner.scan(digest)
        await scanner.scan(second)

        touched = set(rng.sample(sources, max(1, len(sources) // 100)))
        newer = advisories_zip(
            workdir / "all-2.zip", database(params, sources, "2026-02-01T00:00:00Z", touched=touched)
        )
        again = await _timed(results, "import touching 1 % of packages", lambda: vulndb.import_path(newer))
        results.figures["advisories changed"] = again.changed
        rematched = await _timed(results, "re-match of the images holding them", lambda: scanner.rematch(again.keys))
        results.figures["images re-matched"] = rematched
        every = {IndexedPackage.of(p).key for p in installed}
        total = await _timed(
            results, "re-match of every image (no index), for comparison", lambda: scanner.rematch(every)
        )
        results.figures["images in the index"] = total
    finally:
        await store.close()
        await db.close()
    return results


def _rows(results: ScanResults) -> list[tuple[str, str]]:
    found = []
    for name, value in results.figures.items():
        if name.startswith(("SBOM", "import", "match", "re-match")):
            found.append((name, f"{value:.3f} s"))
        else:
            found.append((name, f"{value:.2f}" if "MiB" in name else f"{value:,.0f}"))
    return found


def scan_text(results: ScanResults) -> str:
    rows = [("measurement", "value"), *_rows(results)]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>12}" for name, value in rows)


def scan_markdown(results: ScanResults) -> str:
    lines = ["| measurement | value |", "|---|---:|"]
    lines.extend(f"| {name} | {value} |" for name, value in _rows(results))
    return "\n".join(lines)


def run(params: ScanParams, parent: Path | None = None, keep: bool = False) -> ScanResults:
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-scan-", dir=parent))
    try:
        return asyncio.run(run_scan(params, workdir))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
