"""``dockyard key generate``: a cosign-compatible signing key pair on local files (no server, no database).

The files are what ``cosign generate-key-pair`` writes (``dockyard.signing.keys``): ``P.key``, the private key
encrypted with a password (mode 0600), and ``P.pub``, its public key, to register as a trusted key. cosign, skopeo
(``--sign-by-sigstore-private-key``) and podman sign with them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from dockyard.cli.output import JsonCommand, json_option

PROMPT = "Enter password for private key"


def _password(from_stdin: bool, env_password: str | None) -> bytes:
    """``--password-stdin`` (its line ending removed), else ``$COSIGN_PASSWORD``, else a prompt typed twice. An
    empty password is allowed, as cosign allows it."""
    if from_stdin:
        return sys.stdin.read().rstrip("\r\n").encode()
    if env_password is not None:
        return env_password.encode()
    typed: str = click.prompt(
        PROMPT,
        default="",
        hide_input=True,
        show_default=False,
        confirmation_prompt=f"{PROMPT} again",
        err=True,
    )
    return typed.encode()


def _write(path: Path, data: bytes, mode: int, *, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # an overwritten file keeps its old mode otherwise
        os.write(fd, data)
    finally:
        os.close(fd)


@click.group("key")
def key() -> None:
    """Signing keys in cosign's format (for skopeo, podman and cosign)."""


@key.command(cls=JsonCommand)
@click.option(
    "--output-prefix",
    default="cosign",
    show_default=True,
    help="Write PREFIX.key (private, encrypted) and PREFIX.pub (public).",
)
@click.option("--password-stdin", is_flag=True, help="Read the key's password from standard input.")
@click.option("--force", is_flag=True, help="Overwrite existing key files.")
@json_option
def generate(output_prefix: str, password_stdin: bool, force: bool, as_json: bool) -> None:
    """Generate an ECDSA P-256 key pair as `cosign generate-key-pair` does.

    The password comes from --password-stdin, else $COSIGN_PASSWORD, else a prompt (typed twice); it may be empty.
    """
    from dockyard.signing.keys import generate_key_pair, key_id, load_public_key

    private_path, public_path = Path(f"{output_prefix}.key"), Path(f"{output_prefix}.pub")
    existing = [str(p) for p in (private_path, public_path) if p.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise click.ClickException(f"{' and '.join(existing)} already {verb}; pass --force to overwrite")
    # cosign's own variable, read as cosign reads it: set, even to "", it is the password. (Not a setting of
    # Dockyard's, so not in dockyard.settings; click's envvar= would treat "" as unset.)
    password = _password(password_stdin, os.environ.get("COSIGN_PASSWORD"))
    private_pem, public_pem = generate_key_pair(password)
    try:
        _write(private_path, private_pem, 0o600, force=force)
        _write(public_path, public_pem, 0o644, force=force)
    except OSError as exc:
        raise click.ClickException(f"cannot write the key pair: {exc}") from exc
    kid = key_id(load_public_key(public_pem))
    if as_json:
        click.echo(json.dumps({"private_key": str(private_path), "public_key": str(public_path), "key_id": kid}))
        return
    click.echo(f"Private key written to {private_path}")
    click.echo(f"Public key written to {public_path}")
    click.echo(f"Key ID: {kid}")
