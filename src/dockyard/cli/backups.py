"""``dockyard backup PATH``, ``dockyard restore PATH`` (the embedded deployment, ``dockyard.backups.embedded``) and
``dockyard fsck`` (the database/storage consistency check of either deployment, ``dockyard.backups.fsck``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from dockyard.backups.embedded import BackupError, create_backup, restore_backup
from dockyard.backups.fsck import ConsistencyReport, check_consistency
from dockyard.cli.common import announce, load_cli_settings, opened_store, require_database
from dockyard.cli.output import JsonCommand, json_option, settings_options
from dockyard.cli.progress import phase_progress
from dockyard.db.engine import Database
from dockyard.logs import configure_logging
from dockyard.settings import Settings

_HARDLINK_HELP = (
    "Hard-link blobs instead of copying them: instant and free of space on the same filesystem, but no protection "
    "against losing that disk."
)


@contextmanager
def _progress(title: str, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    with phase_progress(title, unit="blobs", quiet=quiet) as tell:
        if tell is None:
            yield None
            return
        tell("blobs")
        yield lambda _done, _total: tell(None)


def _emit(as_json: bool, document: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(document, indent=2, sort_keys=True))
    else:
        for line in lines:
            click.echo(line)


async def _check(settings: Settings, quiet: bool) -> ConsistencyReport:
    database = Database(settings.effective_database_url)
    try:
        async with opened_store(settings) as store:
            with _progress("consistency check", quiet) as progress:
                return await check_consistency(database, store, progress=progress)
    finally:
        await database.close()


def _report_lines(report: ConsistencyReport) -> list[str]:
    lines = [
        f"{report.tags} tags, {report.manifests} manifests, {report.blobs} referenced blobs: "
        + ("consistent" if report.ok else f"{len(report.problems)} problem(s)")
    ]
    lines += [f"  {p.kind}: {p.repository} {p.subject} {p.digest} ({p.detail})" for p in report.problems]
    return lines


@click.command(cls=JsonCommand)
@settings_options
@json_option
@click.argument("path", type=click.Path(path_type=Path, file_okay=False))
@click.option("--hardlink", is_flag=True, help=_HARDLINK_HELP)
def backup(config: Path | None, data_dir: Path | None, as_json: bool, path: Path, hardlink: bool) -> None:
    """Back the embedded deployment up into PATH (absent or empty), consistently, while it serves.

    PATH receives a snapshot of the database (SQLite's online backup), the blobs it lists, the secret key and
    backup.json (written last). PostgreSQL and S3 deployments: see docs/backup.md."""
    settings = load_cli_settings(config, data_dir)
    require_database(settings, init=False)
    announce(settings, as_json)
    configure_logging("warning")
    try:
        with _progress("backup", as_json) as progress:
            manifest = create_backup(settings, path, hardlink=hardlink, progress=progress)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    _emit(
        as_json,
        manifest,
        [
            f"backup written to {manifest['path']}: database at revision {manifest['database']['revision']}, "
            f"{manifest['blob_count']} blobs ({manifest['blob_bytes']} bytes)"
        ],
    )


@click.command(cls=JsonCommand)
@settings_options
@json_option
@click.argument("path", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--hardlink", is_flag=True, help=_HARDLINK_HELP)
def restore(config: Path | None, data_dir: Path | None, as_json: bool, path: Path, hardlink: bool) -> None:
    """Restore the backup in PATH into an empty data directory, bring its schema up to this version and check it
    (exit status 1 if the check finds a problem)."""
    from dockyard.migrations.runner import upgrade_sync

    settings = load_cli_settings(config, data_dir)
    announce(settings, as_json)
    configure_logging("warning")
    try:
        with _progress("restore", as_json) as progress:
            document = restore_backup(path, settings, hardlink=hardlink, progress=progress)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    upgrade_sync(settings.effective_database_url)
    report = asyncio.run(_check(settings, as_json))
    _emit(
        as_json,
        {**document, "check": report.as_dict()},
        [
            f"restored {document['blob_count']} blobs and the database of {document['created_at']} into "
            f"{document['data_dir']}",
            *_report_lines(report),
        ],
    )
    if not report.ok:
        raise SystemExit(1)


@click.command(cls=JsonCommand)
@settings_options
@json_option
def fsck(config: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Check that every tag's manifest, every index's children and every referenced blob (its bytes, of the
    recorded size) are present. Reads only; exit status 1 if a problem is found."""
    settings = load_cli_settings(config, data_dir)
    require_database(settings, init=False)
    announce(settings, as_json)
    configure_logging("warning")
    report = asyncio.run(_check(settings, as_json))
    _emit(as_json, report.as_dict(), _report_lines(report))
    if not report.ok:
        raise SystemExit(1)
