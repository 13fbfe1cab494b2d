"""``dockyard token-key rotate|list``: the keys that sign registry and API tokens (their output is JSON with or
without ``--json``; ``--json`` makes errors JSON too)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from dockyard.cli.common import Group, announce, load_cli_settings, require_database
from dockyard.cli.output import init_option, json_option, settings_options
from dockyard.settings import Settings, SettingsError


def _settings(config: Path | None, data_dir: Path | None, init: bool, as_json: bool) -> Settings:
    from dockyard.app import resolve_secret_key
    from dockyard.migrations.runner import upgrade_sync

    settings = load_cli_settings(config, data_dir)
    require_database(settings, init=init)
    announce(settings, as_json)
    try:
        settings = resolve_secret_key(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    upgrade_sync(settings.effective_database_url)
    return settings


@click.group("token-key", cls=Group)
def token_key() -> None:
    """Token-signing keys (shared by every replica through the DB)."""


@token_key.command()
@settings_options
@init_option
@json_option
def rotate(config: Path | None, data_dir: Path | None, init: bool, as_json: bool) -> None:
    """Make a new key sign from now on; tokens signed by the old one stay valid until they expire."""
    from dockyard.app import key_ring
    from dockyard.db.engine import Database
    from dockyard.events.audit import record_audit

    settings = _settings(config, data_dir, init, as_json)

    async def run() -> str:
        db = Database(settings.effective_database_url, pool_size=1)
        try:
            ring = key_ring(settings, db)
            await ring.ensure()
            kid = await ring.rotate()
            async with db.write() as conn:
                await record_audit(conn, "library", "signing_key.rotate", actor="operator", target=kid)
            return kid
        finally:
            await db.close()

    click.echo(json.dumps({"kid": asyncio.run(run())}))


@token_key.command("list")
@settings_options
@init_option
@json_option
def list_keys(config: Path | None, data_dir: Path | None, init: bool, as_json: bool) -> None:
    """The keys that verify tokens now (JWK Set); the newest unretired one signs."""
    from dockyard.app import key_ring
    from dockyard.db.engine import Database

    settings = _settings(config, data_dir, init, as_json)

    async def run() -> dict[str, object]:
        db = Database(settings.effective_database_url, pool_size=1)
        try:
            ring = key_ring(settings, db)
            await ring.reload()
            return ring.jwks()
        finally:
            await db.close()

    click.echo(json.dumps(asyncio.run(run()), indent=2))
