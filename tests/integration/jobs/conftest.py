"""Job-queue tests against a real, migrated database of the test backend (SQLite, or PostgreSQL in the
scale-out run), one database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.db.engine import Database
from dockyard.settings import Settings
from tests.support.jobs import database_url, job_settings, migrated_database


@pytest.fixture
def url(tmp_path: Path) -> str:
    return database_url(tmp_path, migrated=True)


@pytest.fixture
async def db(url: str) -> AsyncIterator[Database]:
    database = await migrated_database(url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return job_settings(tmp_path)
