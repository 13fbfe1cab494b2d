"""Runs Alembic migrations programmatically (``dockyard db upgrade`` and server start-up).

A database already at the newest revision is recognised without importing Alembic (a third of a second and
7 MiB in the process that starts the server): ``head_revision`` reads the scripts' revision lines, and one query
reads the database's.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from dockyard.db.engine import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent
_MIGRATION_LOCK = int.from_bytes(b"dockyard", "big")  # the PostgreSQL advisory lock key migrations hold
_REVISION = re.compile(r"^(down_revision|revision)\s*=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.MULTILINE)


def head_revision() -> str:
    """The newest revision of ``versions/``: the one no other script names as its ``down_revision`` (the history
    is one line; ``tests/unit/migrations`` checks this against Alembic's own answer)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for name, value in _REVISION.findall(script.read_text(encoding="utf-8")):
            if value:
                (revisions if name == "revision" else parents).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have one head, found {sorted(heads)}")
    return heads.pop()


async def current_revision(db: Database) -> str | None:
    """The database's schema revision (None when it has never been migrated)."""
    try:
        async with db.read() as conn:
            stored = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    except DBAPIError:
        return None  # no alembic_version table yet
    return str(stored[0]) if len(stored) == 1 else None


async def is_current(db: Database) -> bool:
    """Whether the database is at ``head_revision()`` (False when it has never been migrated)."""
    return await current_revision(db) == head_revision()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to run on every start, also from several replicas at once."""
    if revision == "head" and await is_current(db):
        return  # a replica migrating now has not committed: this one then sees the old revision and waits below

    def run(connection: Connection) -> None:
        from alembic import command

        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with db.write() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas starting together migrate one after the other (the others then find the schema current);
            # on SQLite the write transaction's BEGIN IMMEDIATE already serialises them.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(run)


def upgrade_sync(url: str) -> None:
    async def main() -> None:
        db = Database(url)
        try:
            await upgrade(db)
        finally:
            await db.close()

    asyncio.run(main())
