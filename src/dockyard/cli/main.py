"""``dockyard serve`` (run by ``cli/serve.py``), ``gc``, ``db upgrade``, ``db status``, ``--version``, ``dockyard
worker`` (``cli/worker.py``), ``dockyard builder`` (build jobs only, ``cli/builds.py``), and the administration
groups ``user``, ``org``, ``team``, ``robot``, ``token``, ``repo``, ``tag``, ``audit``, ``whoami``, ``webhook``,
``trust`` and ``build`` (``cli/accounts.py``, ``cli/access.py``, ``cli/content.py``, ``cli/webhooks.py``,
``cli/trust.py``, ``cli/builds.py``), ``key`` (cosign key pairs, ``cli/keygen.py``), ``sign`` (``cli/sign.py``),
``sample-image`` (``cli/sample.py``), and ``backup``, ``restore`` and ``fsck`` (``cli/backups.py``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from dockyard import __version__
from dockyard.cli.lazy import LazyGroup
from dockyard.cli.output import Group, JsonCommand, init_option, json_option, settings_options
from dockyard.logs import configure_logging
from dockyard.settings import Settings, SettingsError, load_settings

log = logging.getLogger("dockyard")


def _settings(config: Path | None, **overrides: Any) -> Settings:
    """The settings of ``dockyard serve`` (the command-line options override the file and environment)."""
    try:
        settings = load_settings(config, **overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    # Imported here: argon2 and cryptography are not worth loading for `dockyard --help`.
    from dockyard.auth.secrets import configure_password_hashing_from

    configure_password_hashing_from(settings)
    return settings


def _configure_logging(level: str) -> None:
    configure_logging(level)


# The administration groups load on first use (they import the whole service stack).
_ADMIN_GROUPS = {
    "user": "dockyard.cli.accounts:user",
    "org": "dockyard.cli.accounts:org",
    "team": "dockyard.cli.accounts:team",
    "robot": "dockyard.cli.access:robot",
    "token": "dockyard.cli.access:token",
    "repo": "dockyard.cli.content:repo",  # the group of cli/access.py, with content.py's list and delete
    "tag": "dockyard.cli.content:tag",
    "audit": "dockyard.cli.content:audit",
    "whoami": "dockyard.cli.content:whoami",
    "token-key": "dockyard.cli.token_keys:token_key",
    "key": "dockyard.cli.keygen:key",
    "sign": "dockyard.cli.sign:sign",
    "webhook": "dockyard.cli.webhooks:webhook",
    "proxy": "dockyard.cli.proxies:proxy",
    "ldap": "dockyard.cli.ldap:ldap",
    "replication": "dockyard.cli.replication:replication",
    "trust": "dockyard.cli.trust:trust",
    "vulndb": "dockyard.cli.vulns:vulndb",
    "quota": "dockyard.cli.lifecycle:quota",
    "retention": "dockyard.cli.lifecycle:retention",
    "scan": "dockyard.cli.vulns:scan",
    "build": "dockyard.cli.builds:build",
    "builder": "dockyard.cli.builds:builder",  # runs build jobs only (other machines)
    "worker": "dockyard.cli.worker:worker",  # not an administration group, but as heavy to import
    "sample-image": "dockyard.cli.sample:sample_image",
    "backup": "dockyard.cli.backups:backup",
    "restore": "dockyard.cli.backups:restore",
    "fsck": "dockyard.cli.backups:fsck",
}


class MainGroup(LazyGroup):
    command_class = JsonCommand
    group_class = Group


@click.group(cls=MainGroup, lazy_subcommands=_ADMIN_GROUPS)
@click.version_option(__version__, prog_name="dockyard")
def main() -> None:
    """Dockyard: a self-hosted Docker Hub."""


def client_address(settings: Settings) -> str:
    """``host:port`` as a client on this machine reaches the server (a wildcard listen address → loopback)."""
    host = settings.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{settings.port}" if ":" in host else f"{host}:{settings.port}"


def dockyard_command() -> str:
    """How to run this ``dockyard`` from any folder: ``dockyard`` when it is the one on the PATH, else its path."""
    import shutil
    import sys

    this = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if this is None or this.name != "dockyard":
        return f"{sys.executable} -m dockyard.cli.main"
    on_path = shutil.which("dockyard")
    return "dockyard" if on_path is not None and Path(on_path).resolve() == this else str(this)


def first_steps(settings: Settings) -> list[str]:
    """The commands ``dockyard serve`` prints for a first image: each works as printed, from any folder."""
    address = client_address(settings)
    steps: list[str] = []
    if not settings.open:
        steps.append(f"podman login --tls-verify=false -u {settings.admin_username} {address}")
    data = f"--data-dir {settings.data_dir.resolve()}" if not settings.database_url else ""
    image = f"{settings.admin_username}/hello:latest"
    steps.append(f"{dockyard_command()} sample-image --push {image} {data}".rstrip())
    steps.append(f"podman run --rm --tls-verify=false {address}/{image}")
    return steps


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
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Serve HTTPS with this certificate chain (PEM; reloaded when the file changes). Needs --tls-key.",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The private key of --tls-cert (PEM; reloaded when the file changes).",
)
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    config: Path | None,
    open_: bool | None,
    workers: int | None,
    no_jobs: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Run the registry server (migrating the DB first); HTTPS with ``--tls-cert`` and ``--tls-key``."""
    from dockyard.cli.lean_imports import skip_unused_imports

    skip_unused_imports()  # before uvicorn and httpx are imported
    from dockyard.cli.serve import run_server, startup_warnings, tls_context

    settings = _settings(
        config,
        host=host,
        port=port,
        data_dir=data_dir,
        open=open_,
        workers=workers,
        jobs_enabled=False if no_jobs else None,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    _configure_logging(settings.log_level)
    tls_context(settings)  # a certificate that does not load fails here, before anything says "serving on"
    for warning in startup_warnings(settings):
        log.warning("%s", warning)
    from dockyard.cli.serve import bind_listener
    from dockyard.startup import admin_password_notice, prepare_data_dir, prepare_database, resolve_secret_key

    prepare_data_dir(settings)
    try:
        settings = resolve_secret_key(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.ldap_enabled and settings.ldap_bind_dn:
        from dockyard.auth.ldap import bind_password

        try:  # a sealed password the secret cannot open fails here, before anything says "serving on"
            bind_password(settings)
        except ValueError as exc:
            raise click.ClickException(f"ldap_bind_password: {exc}") from exc
    sock = bind_listener(settings)  # a busy port fails here, before anything says "serving on"
    if settings.effective_workers == 1:
        # With several workers, each prepares the database before it serves (dockyard.cli.server_worker).
        from dockyard.errors import DomainError

        try:
            generated = prepare_database(settings)
        except DomainError as exc:
            raise click.ClickException(f"cannot set up the administrator account: {exc.message}") from exc
        if generated is not None:
            click.echo(admin_password_notice(settings, generated))
    url = f"{'https' if settings.tls else 'http'}://{client_address(settings)}"
    click.echo(f"Dockyard {__version__} serving on {url}  (data: {settings.data_dir.resolve()})")
    click.echo("Push and run a first image (in another terminal; each command works as printed):")
    for step in first_steps(settings):
        click.echo(f"  {step}")
    run_server(settings, sock)


@main.command()
@settings_options
@init_option
@json_option
@click.option("--dry-run", is_flag=True, help="List what would be freed; delete nothing.")
@click.option("--grace-seconds", type=int, default=None, help="Keep content younger than this (default: setting).")
@click.option("--verbose", "-v", is_flag=True, help="List every manifest and blob.")
def gc(
    config: Path | None,
    data_dir: Path | None,
    init: bool,
    as_json: bool,
    dry_run: bool,
    grace_seconds: int | None,
    verbose: bool,
) -> None:
    """Collect unreferenced manifests, blobs and abandoned uploads (safe while the registry serves).

    Prints a JSON summary (with ``--json`` the summary and, with ``-v``, the lists as one document); on a
    terminal a progress display shows the phases."""
    import asyncio
    import json
    from datetime import timedelta

    from dockyard.cli.common import announce, load_cli_settings, require_database
    from dockyard.cli.progress import phase_progress
    from dockyard.db.engine import Database
    from dockyard.migrations.runner import upgrade_sync
    from dockyard.models.base import utcnow
    from dockyard.registry.context import RegistryContext
    from dockyard.registry.gc import GarbageCollector, GCReport
    from dockyard.registry.gc_runs import CLI, record_gc_run
    from dockyard.storage.factory import open_blob_store

    settings = load_cli_settings(config, data_dir)
    require_database(settings, init=init)
    announce(settings, as_json)
    _configure_logging("warning")
    upgrade_sync(settings.effective_database_url)

    async def run() -> GCReport:
        database = Database(settings.effective_database_url)
        store = open_blob_store(settings.effective_storage_url, fsync=settings.fsync)
        try:
            collector = GarbageCollector(RegistryContext(db=database, store=store, settings=settings))
            grace = None if grace_seconds is None else timedelta(seconds=grace_seconds)
            started = utcnow()
            with phase_progress("garbage collection", quiet=as_json) as progress:
                report = await collector.run(dry_run=dry_run, grace=grace, progress=progress)
            await record_gc_run(database, report, started_at=started, trigger=CLI)
            return report
        finally:
            await store.close()
            await database.close()

    report = asyncio.run(run())
    if as_json:
        document: dict[str, object] = {"dry_run": dry_run, **report.summary()}
        if verbose:
            document["manifests"] = [{"repository": r, "digest": d} for r, d in report.manifests]
            document["blobs"] = [{"digest": d, "size": size} for d, size in report.blobs]
            document["uploads"] = list(report.uploads)
        click.echo(json.dumps(document, indent=2, sort_keys=True))
        return
    if verbose:
        for repository, digest in report.manifests:
            click.echo(f"manifest {repository}@{digest}")
        for digest, size in report.blobs:
            click.echo(f"blob {digest} {size}")
        for upload_id in report.uploads:
            click.echo(f"upload {upload_id}")
    click.echo(json.dumps(report.summary()))


@main.group(cls=Group)
def db() -> None:
    """Database maintenance."""


@db.command()
@settings_options
@init_option
@json_option
def upgrade(config: Path | None, data_dir: Path | None, init: bool, as_json: bool) -> None:
    """Apply all DB migrations (``--init`` creates the database on a fresh data directory)."""
    import json

    from dockyard.cli.common import announce, load_cli_settings, require_database
    from dockyard.migrations.runner import upgrade_sync

    settings = load_cli_settings(config, data_dir)
    require_database(settings, init=init)
    announce(settings, as_json)
    upgrade_sync(settings.effective_database_url)
    if as_json:
        click.echo(json.dumps({"status": "up_to_date"}))
    else:
        click.echo("database is up to date")


@db.command()
@settings_options
@json_option
def status(config: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """The database's schema revision and this release's newest one: whether ``db upgrade`` (or the next start)
    has migrations to apply (docs/upgrade.md). Changes nothing."""
    import asyncio
    import json

    from dockyard.cli.common import announce, load_cli_settings, require_database
    from dockyard.db.engine import Database
    from dockyard.migrations.runner import current_revision, head_revision

    settings = load_cli_settings(config, data_dir)
    require_database(settings, init=False)
    announce(settings, as_json)

    async def read() -> str | None:
        database = Database(settings.effective_database_url)
        try:
            return await current_revision(database)
        finally:
            await database.close()

    current, head = asyncio.run(read()), head_revision()
    document = {"revision": current, "head": head, "pending": current != head}
    if as_json:
        click.echo(json.dumps(document, sort_keys=True))
    elif current == head:
        click.echo(f"database at revision {current}: up to date")
    else:
        click.echo(f"database at revision {current or '(none)'}; this release migrates it to {head}")


if __name__ == "__main__":
    main()
