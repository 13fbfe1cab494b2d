"""Runs Alembic migrations programmatically (``dockyard db upgrade`` and server start-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from dockyard.db.engine import Database

MIGRATIONS = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to run on every start and from several replicas in turn."""

    def run(connection: Connection) -> None:
        cfg = alembic_config(db.url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with db.write() as conn:
        await conn.run_sync(run)


def upgrade_sync(url: str) -> None:
    async def main() -> None:
        db = Database(url)
        try:
            await upgrade(db)
        finally:
            await db.close()

    asyncio.run(main())
