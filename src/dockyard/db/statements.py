"""Portable statement helpers for the dialects Dockyard runs on (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase


async def insert_ignore(conn: AsyncConnection, model: type[DeclarativeBase], values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING``; True if this call inserted the row.

    Cheaper than a savepoint per insert and safe against concurrent inserts of the same key on both engines.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(model).values(**values).on_conflict_do_nothing()
    result = await conn.execute(statement)
    return bool(result.rowcount == 1)
