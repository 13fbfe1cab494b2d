"""``dockyard sign NS/REPO:TAG --key P.key``: sign an image from the server machine, as the operator, with a
cosign-format key (``dockyard key generate``, ``cosign generate-key-pair``). Writes the cosign tag-scheme
signature next to the image (``dockyard.trust.signer``)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click

from dockyard.cli.output import JsonCommand, json_option, settings_options
from dockyard.settings import SettingsError, load_settings


@click.command("sign", cls=JsonCommand)
@click.argument("reference")
@click.option(
    "--key",
    "key_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="A cosign private key file to sign with.",
)
@click.option("--namespace-key", is_flag=True, help="Sign with the namespace's Dockyard-managed key instead.")
@click.option("--password-stdin", is_flag=True, help="Read the key's password from standard input.")
@click.option("--identity", default=None, help="The reference clients pull by (default: HOST:PORT/NS/REPO).")
@settings_options
@json_option
def sign(
    reference: str,
    key_path: Path | None,
    namespace_key: bool,
    password_stdin: bool,
    identity: str | None,
    config: Path | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Sign NS/REPO:TAG (or NS/REPO@sha256:…) with a cosign key; prints the signed digest and signature tag."""
    from dockyard.auth.secrets import SecretBox
    from dockyard.core.names import namespace_of, validate_name
    from dockyard.db.engine import Database
    from dockyard.errors import DomainError
    from dockyard.migrations.runner import upgrade_sync
    from dockyard.registry.context import RegistryContext
    from dockyard.registry.services import Registry
    from dockyard.signing.keys import InvalidKey, PrivateKey, load_private_key
    from dockyard.storage.factory import open_blob_store
    from dockyard.trust.manage import TrustService
    from dockyard.trust.signer import sign_image

    try:
        settings = load_settings(config, data_dir=data_dir)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    if "@" in reference:
        repository, _, ref = reference.partition("@")
    else:
        repository, _, ref = reference.rpartition(":") if ":" in reference.split("/")[-1] else (reference, "", "latest")
    try:
        validate_name(repository)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    if (key_path is None) == (not namespace_key):
        raise click.ClickException("give either --key FILE or --namespace-key")
    private_key: PrivateKey | None = None
    if key_path is not None:
        stdin = sys.stdin.read().rstrip("\r\n") if password_stdin else None
        password = (stdin if stdin is not None else os.environ.get("COSIGN_PASSWORD", "")).encode()
        try:
            private_key = load_private_key(key_path.read_bytes(), password)
        except InvalidKey as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        from dockyard.app import resolve_secret_key

        try:
            settings = resolve_secret_key(settings)
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
    if identity is None:
        host = urlsplit(settings.base_url).netloc if settings.base_url else f"{settings.host}:{settings.port}"
        identity = f"{host}/{repository}"
    upgrade_sync(settings.effective_database_url)

    async def run() -> tuple[str, str]:
        db = Database(settings.effective_database_url, pool_size=2)
        store = open_blob_store(settings.effective_storage_url, fsync=settings.fsync)
        try:
            registry = Registry.build(RegistryContext(db=db, store=store, settings=settings))
            key = private_key
            if key is None:
                service = TrustService(db, SecretBox(settings.secret_key))
                key = await service.managed_private_key(namespace_of(repository))
            return await sign_image(registry, repository, ref, key, identity=identity, actor="operator")
        finally:
            await store.close()
            await db.close()

    digest, tag = asyncio.run(run())  # a DomainError is the command's error (JsonCommand: {"error": …} under --json)
    if as_json:
        click.echo(json.dumps({"repository": repository, "digest": digest, "signature_tag": tag, "identity": identity}))
    else:
        click.echo(f"signed {repository}@{digest} for {identity}; signature tag {tag}")
