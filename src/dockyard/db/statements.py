"""Portable statement helpers for the dialects Dockyard runs on (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase


def insert_or_nothing(conn: AsyncConnection | Connection, model: type[DeclarativeBase]) -> Insert:
    """The dialect's ``INSERT … ON CONFLICT DO NOTHING`` into ``model``'s table, to add values (and RETURNING) to.

    With RETURNING, no row comes back if the row existed. On PostgreSQL an insert racing another transaction's
    uncommitted insert of the same key waits for it and then does nothing, instead of failing the transaction.
    """
    if conn.dialect.name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    return sqlite.insert(model).on_conflict_do_nothing()


async def insert_ignore(conn: AsyncConnection, model: type[DeclarativeBase], values: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING``; True if this call inserted the row.

    Cheaper than a savepoint per insert and safe against concurrent inserts of the same key on both engines.
    """
    result = await conn.execute(_insert_ignore(conn, model), values)
    return bool(result.rowcount == 1)


def insert_ignore_sync(conn: Connection, model: type[DeclarativeBase], values: dict[str, Any]) -> bool:
    """``insert_ignore`` inside a synchronous unit of work."""
    return bool(conn.execute(_insert_ignore(conn, model), values).rowcount == 1)


def _insert_ignore(conn: AsyncConnection | Connection, model: type[DeclarativeBase]) -> Insert:
    key = (conn.dialect.name, model)
    statement = _INSERT_IGNORE.get(key)
    if statement is None:
        statement = _INSERT_IGNORE[key] = insert_or_nothing(conn, model)
    return statement


# Built once per (dialect, table): values are passed as parameters, so SQLAlchemy's compiled cache is reused.
_INSERT_IGNORE: dict[tuple[str, type[DeclarativeBase]], Insert] = {}
