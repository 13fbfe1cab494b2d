"""``dockyard vulndb import PATH`` and ``dockyard vulndb status`` (the vulnerability database), and ``dockyard
scan NS/REPO:TAG`` (an image's vulnerability report, scanning it first if it never was) — run by the server's
operator against the server's DB, like the other administration commands (``dockyard.vulns``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dockyard.cli.common import Group, Operator, jsonable, opened_store, operator_command, print_fields, print_table
from dockyard.cli.progress import phase_progress
from dockyard.core.names import namespace_of
from dockyard.db.engine import Database
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.settings import Settings
from dockyard.vulns.reports import Report, VulnerabilityReports
from dockyard.vulns.scanner import Scanner
from dockyard.vulns.tasks import inventory_source
from dockyard.vulns.vexrefs import ReferrerVex
from dockyard.vulns.vulndb import ImportResult, VulnDatabase


@click.group(cls=Group)
def vulndb() -> None:
    """The vulnerability database (OSV data): import files, directories or all.zip exports; show its status."""


@operator_command(vulndb, "import")
@click.argument("path", type=click.Path(path_type=Path, exists=True))
def import_(op: Operator, path: Path) -> None:
    """Import OSV advisories from PATH (a JSON file, a directory of them, or an ecosystem's all.zip) in one
    transaction, then re-match the scanned images holding packages whose advisories changed."""

    async def work(db: Database) -> tuple[ImportResult, int]:
        with phase_progress("importing OSV data", unit="documents", quiet=op.as_json) as tell:
            if tell is not None:
                tell("reading")
            result = await VulnDatabase(db).import_path(
                path, progress=None if tell is None else lambda count: tell(None, count)
            )
            if tell is not None and result.keys:
                tell("re-matching scanned images")
            rematched = await Scanner(db, inventory_source(op.settings, db)).rematch(result.keys) if result.keys else 0
        return result, rematched

    result, rematched = op.run(work)
    fields = {
        "source": result.source,
        "advisories_read": result.read,
        "changed": result.changed,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
        "images_rematched": rematched,
    }
    if op.as_json:
        click.echo(json.dumps(fields))
    else:
        print_fields("vulnerability data imported", fields.items())


@operator_command(vulndb, "status")
def status(op: Operator) -> None:
    """Sources, advisory counts per ecosystem and the last update."""
    state = op.run(lambda db: VulnDatabase(db).status())
    if op.as_json:
        click.echo(json.dumps({**jsonable(state), "sync": sync_schedule(op.settings)}))
        return
    print_fields(
        "vulnerability database",
        [
            ("advisories", state.advisories),
            ("affected entries", state.affected),
            ("withdrawn", state.withdrawn),
            ("last update", state.last_update),
            ("scheduled sync", sync_schedule(op.settings)),
            *((f"  {ecosystem}", count) for ecosystem, count in state.by_ecosystem.items()),
        ],
    )
    print_table(
        "sources",
        ["source", "imported", "advisories", "changed", "seconds", "error"],
        [
            (s.source, s.imported_at, s.advisories, s.changed, round(s.duration_seconds, 3), s.error)
            for s in state.sources
        ],
    )


def sync_schedule(settings: Settings) -> str:
    """When the server syncs ``vulndb_sources``, in words."""
    if not settings.vulndb_sources:
        return "off: no vulndb_sources"
    if settings.vulndb_air_gapped:
        return f"off: air-gapped ({len(settings.vulndb_sources)} sources configured)"
    return f"every {settings.vulndb_sync_interval_seconds} s from {len(settings.vulndb_sources)} sources"


_top = click.Group()


@operator_command(_top, "scan")
@click.argument("image")
@click.option("--platform", default=None, help="os/arch[/variant] of an index's image (default linux/amd64).")
def _scan(op: Operator, image: str, platform: str | None) -> None:
    """Print the vulnerability report of IMAGE (NS/REPO:TAG or NS/REPO@DIGEST), scanning it first if needed."""
    name, sep, reference = image.partition("@")
    if not sep:
        name, sep, reference = image.rpartition(":")
        if not sep or "/" in reference:
            name, reference = image, "latest"
    namespace = namespace_of(name)
    short = name[len(namespace) + 1 :] if name.startswith(f"{namespace}/") else name

    async def work(db: Database) -> Report:
        async with opened_store(op.settings) as store:
            registry = RegistryContext(db=db, store=store, settings=op.settings)
            scanner = Scanner(db, inventory_source(op.settings, db, registry))
            vex = ReferrerVex(BlobService(registry)) if op.settings.vex_referrers else None
            reports = VulnerabilityReports(db, scanner, vex)
            return await reports.for_tag(op.actor, namespace, short, reference, platform)

    report = op.run(work)
    if op.as_json:
        click.echo(json.dumps(jsonable(report)))
        return
    if report.error is not None:
        click.echo(f"{image} ({report.digest}) cannot be scanned: {report.error}")
        return
    if not report.scanned:
        click.echo(f"{image} ({report.digest}) has not been scanned: its inventory is not available yet")
        return
    summary = ", ".join(f"{count} {label}" for label, count in report.summary().items() if count)
    print_table(
        f"{image} {report.platform} {report.digest}: {report.packages} packages; {summary or 'no findings'}",
        ["id", "aliases", "package", "installed", "fixed", "severity", "score", "suppressed"],
        [
            (
                f.id,
                f.aliases,
                f.package,
                f.installed,
                f.fixed,
                f.severity,
                f.score,
                f"{f.suppressed.kind}: {f.suppressed.reason}" if f.suppressed else None,
            )
            for f in report.findings
        ],
    )


scan = _top.commands["scan"]
