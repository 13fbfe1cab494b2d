"""What a server needs before it serves, shared by ``dockyard serve``, its worker processes, the composition root
and the administration commands: the data directory and the server secret (cheap: this module imports nothing
heavy at first), then ``prepare_database`` — migrations, and on first start the token-signing key and the
administrator account.

With several workers, ``dockyard serve`` only settles the data directory and the secret before it becomes the
supervisor (``dockyard.cli.serve``); each worker prepares the database before it serves (``dockyard.cli.
server_worker``), as replicas starting together do: migrations and the first start are safe to run side by side.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.settings import Settings, SettingsError

if TYPE_CHECKING:
    from dockyard.auth.token_keys import KeyRing
    from dockyard.db.engine import Database

log = logging.getLogger("dockyard")


def resolve_secret_key(settings: Settings) -> Settings:
    """Settings with the server secret filled in: the configured one, else (embedded deployments only) the one
    kept in ``<data_dir>/secret.key``, created on first start. A PostgreSQL deployment must configure it, because
    every replica needs the same secret to read the signing keys stored in the DB."""
    if settings.secret_key:
        return settings
    if not settings.effective_database_url.startswith("sqlite"):
        raise SettingsError(
            "secret_key: required with PostgreSQL (set DOCKYARD_SECRET_KEY to the same value on every replica)"
        )
    path = settings.secret_key_path
    if not path.exists():
        _create_secret_key(path)
    return settings.model_copy(update={"secret_key": path.read_text().strip()})


def _create_secret_key(path: Path) -> None:
    """Write a new secret to ``path`` unless another process (a replica or worker starting at the same moment)
    does first: the key is written whole to a file of this process's own, then linked into place — never over
    an existing key, and never seen half-written."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: its key is the key
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # the name survives a power cut too
    finally:
        os.close(directory)


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directory readable by this user only (files in it are created 0600, directories 0700),
    and warn when an existing one lets other users in: its database, blobs and secret key are all there."""
    if settings.database_url and settings.storage_url and settings.secret_key:
        return  # nothing of this server lives in the data directory
    path = settings.data_dir
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "the data directory %s is readable by others (mode %s): it holds the database, the blobs and the "
            "secret key; restrict it with `chmod 700 %s`",
            path.resolve(),
            oct(mode),
            path.resolve(),
        )


def key_ring(settings: Settings, db: Database) -> KeyRing:
    from dockyard.auth.secrets import SecretBox
    from dockyard.auth.token_keys import KeyRing

    horizon = max(settings.refresh_token_lifetime_seconds, settings.token_lifetime_seconds)
    return KeyRing(db, SecretBox(settings.secret_key), timedelta(seconds=horizon))


async def first_start(settings: Settings) -> str | None:
    """Create what a fresh installation needs: the token-signing key and the administrator account. Returns the
    administrator's generated password the one time it is created without ``DOCKYARD_ADMIN_PASSWORD``."""
    from dockyard.accounts.users import UserService
    from dockyard.auth.secrets import configure_password_hashing_from
    from dockyard.db.engine import Database
    from dockyard.webhooks.notifications import sync_endpoints

    configure_password_hashing_from(settings)
    db = Database(settings.effective_database_url, pool_size=2)
    try:
        await key_ring(settings, db).create_if_missing()
        await sync_endpoints(db, settings)
        return await UserService(db, settings).ensure_admin(settings.admin_username, settings.admin_password or None)
    finally:
        await db.close()


def prepare_database(settings: Settings) -> str | None:
    """Migrate the database, then ``first_start`` (returns what it returns). Raises ``DomainError`` when the
    administrator account cannot be set up."""
    import asyncio

    from dockyard.migrations.runner import upgrade_sync

    upgrade_sync(settings.effective_database_url)
    return asyncio.run(first_start(settings))


def admin_password_notice(settings: Settings, password: str) -> str:
    return (
        f"Created the administrator account {settings.admin_username!r} with password: {password}\n"
        "  (shown once; set DOCKYARD_ADMIN_PASSWORD before the first start to choose it)"
    )
