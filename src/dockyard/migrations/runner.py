"""Runs Alembic migrations programmatically (``dockyard db upgrade`` and server start-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from dockyard.db.engine import Database

MIGRATIONS = Path(__file__).parent
_MIGRATION_LOCK = int.from_bytes(b"dockyard", "big")  # the PostgreSQL advisory lock key migrations hold


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to run on every start, also from several replicas at once."""

    def run(connection: Connection) -> None:
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
