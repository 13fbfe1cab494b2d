"""Account services against a real, migrated database of the test backend (SQLite, or PostgreSQL in the
scale-out run), one database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.db.engine import Database
from dockyard.settings import Settings
from tests.support.accounts import Services, migrated_database, services


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await migrated_database(tmp_path)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def svc(db: Database, settings: Settings) -> Services:
    return services(db, settings)
