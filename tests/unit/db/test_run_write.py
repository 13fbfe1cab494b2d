"""Database.run_write starts a transaction again after a deadlock or serialization failure, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _error(sqlstate: str) -> DBAPIError:
    return DBAPIError("UPDATE …", {}, _PgError(sqlstate))


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
async def test_retries_transient_failures(tmp_path: Path, sqlstate: str) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    attempts: list[int] = []

    async def work(conn: AsyncConnection) -> int:
        attempts.append(1)
        await conn.execute(text("SELECT 1"))
        if len(attempts) < 3:
            raise _error(sqlstate)
        return 42

    try:
        assert await db.run_write(work) == 42
        assert len(attempts) == 3
    finally:
        await db.close()


async def test_other_errors_and_exhausted_attempts_propagate(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    calls: list[int] = []

    async def unique_violation(conn: AsyncConnection) -> None:
        calls.append(1)
        raise _error("23505")

    async def always_deadlocks(conn: AsyncConnection) -> None:
        calls.append(1)
        raise _error("40P01")

    try:
        with pytest.raises(DBAPIError):
            await db.run_write(unique_violation)
        assert len(calls) == 1
        calls.clear()
        with pytest.raises(DBAPIError):
            await db.run_write(always_deadlocks, attempts=3)
        assert len(calls) == 3
    finally:
        await db.close()
