"""``dockyard serve`` (run by ``cli/serve.py``), ``gc``, ``db upgrade``, ``--version``, ``dockyard worker``
(``cli/worker.py``), ``dockyard builder`` (build jobs only, ``cli/builds.py``), and the administration groups
``user``, ``org``, ``team``, ``robot``, ``token``, ``repo``, ``webhook``, ``trust`` and ``build`` (``cli/accounts.py``,
``cli/access.py``, ``cli/webhooks.py``, ``cli/trust.py``, ``cli/builds.py``), ``key`` (cosign key pairs,
``cli/keygen.py``) and ``sign`` (``cli/sign.py``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from dockyard import __version__
from dockyard.cli.lazy import LazyGroup
from dockyard.logs import configure_logging
from dockyard.settings import Settings, SettingsError, load_settings

log = logging.getLogger("dockyard")


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _configure_logging(level: str) -> None:
    configure_logging(level)


# The administration groups load on first use (they import the whole service stack).
_ADMIN_GROUPS = {
    "user": "dockyard.cli.accounts:user",
    "org": "dockyard.cli.accounts:org",
    "team": "dockyard.cli.accounts:team",
    "robot": "dockyard.cli.access:robot",
    "token": "dockyard.cli.access:token",
    "repo": "dockyard.cli.access:repo",
    "token-key": "dockyard.cli.token_keys:token_key",
    "key": "dockyard.cli.keygen:key",
    "sign": "dockyard.cli.sign:sign",
    "webhook": "dockyard.cli.webhooks:webhook",
    "trust": "dockyard.cli.trust:trust",
    "vulndb": "dockyard.cli.vulns:vulndb",
    "scan": "dockyard.cli.vulns:scan",
    "build": "dockyard.cli.builds:build",
    "builder": "dockyard.cli.builds:builder",  # runs build jobs only (other machines)
    "worker": "dockyard.cli.worker:worker",  # not an administration group, but as heavy to import
}


@click.group(cls=LazyGroup, lazy_subcommands=_ADMIN_GROUPS)
@click.version_option(__version__, prog_name="dockyard")
def main() -> None:
    """Dockyard: a self-hosted Docker Hub."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 5000).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Where the embedded DB and blobs live.")
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A TOML settings file.",
)
@click.option("--open", "open_", is_flag=True, default=None, help="No authentication: anyone may pull, push, delete.")
@click.option("--workers", type=int, default=None, help="Server processes (default: one per CPU core).")
@click.option("--no-jobs", is_flag=True, help="Run no background jobs here (leave them to `dockyard worker`).")
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    config: Path | None,
    open_: bool | None,
    workers: int | None,
    no_jobs: bool,
) -> None:
    """Run the registry server (migrating the DB first)."""
    from dockyard.cli.serve import run_server, startup_warnings

    settings = _settings(
        config,
        host=host,
        port=port,
        data_dir=data_dir,
        open=open_,
        workers=workers,
        jobs_enabled=False if no_jobs else None,
    )
    _configure_logging(settings.log_level)
    for warning in startup_warnings(settings):
        log.warning("%s", warning)
    from dockyard.startup import admin_password_notice, prepare_data_dir, prepare_database, resolve_secret_key

    prepare_data_dir(settings)
    try:
        settings = resolve_secret_key(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.effective_workers == 1:
        # With several workers, each prepares the database before it serves (dockyard.cli.server_worker).
        from dockyard.errors import DomainError

        try:
            generated = prepare_database(settings)
        except DomainError as exc:
            raise click.ClickException(f"cannot set up the administrator account: {exc.message}") from exc
        if generated is not None:
            click.echo(admin_password_notice(settings, generated))
    url = f"http://{settings.host}:{settings.port}"
    click.echo(f"Dockyard {__version__} serving on {url}  (data: {settings.data_dir.resolve()})")
    address = f"{settings.host}:{settings.port}"
    if not settings.open:
        click.echo(f"Log in: podman login --tls-verify=false -u {settings.admin_username} {address}")
    click.echo(
        f"Push an image: skopeo copy --dest-tls-verify=false oci-archive:image.tar "
        f"docker://{address}/{settings.admin_username}/hello:latest"
    )
    run_server(settings)


@main.command()
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--dry-run", is_flag=True, help="List what would be freed; delete nothing.")
@click.option("--grace-seconds", type=int, default=None, help="Keep content younger than this (default: setting).")
@click.option("--verbose", "-v", is_flag=True, help="List every manifest and blob.")
def gc(config: Path | None, data_dir: Path | None, dry_run: bool, grace_seconds: int | None, verbose: bool) -> None:
    """Collect unreferenced manifests, blobs and abandoned uploads (safe while the registry serves)."""
    import asyncio
    import json
    from datetime import timedelta

    from dockyard.db.engine import Database
    from dockyard.migrations.runner import upgrade_sync
    from dockyard.registry.context import RegistryContext
    from dockyard.registry.gc import GarbageCollector, GCReport
    from dockyard.storage.factory import open_blob_store

    settings = _settings(config, data_dir=data_dir)
    _configure_logging("warning")
    upgrade_sync(settings.effective_database_url)

    async def run() -> GCReport:
        database = Database(settings.effective_database_url)
        store = open_blob_store(settings.effective_storage_url, fsync=settings.fsync)
        try:
            collector = GarbageCollector(RegistryContext(db=database, store=store, settings=settings))
            grace = None if grace_seconds is None else timedelta(seconds=grace_seconds)
            return await collector.run(dry_run=dry_run, grace=grace)
        finally:
            await store.close()
            await database.close()

    report = asyncio.run(run())
    if verbose:
        for repository, digest in report.manifests:
            click.echo(f"manifest {repository}@{digest}")
        for digest, size in report.blobs:
            click.echo(f"blob {digest} {size}")
        for upload_id in report.uploads:
            click.echo(f"upload {upload_id}")
    click.echo(json.dumps(report.summary()))


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
def upgrade(config: Path | None, data_dir: Path | None) -> None:
    """Apply all DB migrations."""
    from dockyard.migrations.runner import upgrade_sync

    settings = _settings(config, data_dir=data_dir)
    upgrade_sync(settings.effective_database_url)
    click.echo("database is up to date")


if __name__ == "__main__":
    main()
