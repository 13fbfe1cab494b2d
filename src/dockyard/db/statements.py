"""Portable statement helpers for the dialects Dockyard runs on (SQLite, PostgreSQL). A dialect's own constructs
are imported when a connection of that dialect first needs them: a process loads only the dialect it talks to."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import ColumnElement, Executable, Insert, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: AsyncConnection | Connection) -> Callable[[Any], postgresql.Insert | sqlite.Insert]:
    """The ``insert`` of ``conn``'s dialect, whose statements have ``on_conflict_do_nothing`` / ``_do_update``."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def insert_or_nothing(conn: AsyncConnection | Connection, model: type[DeclarativeBase]) -> Insert:
    """The dialect's ``INSERT … ON CONFLICT DO NOTHING`` into ``model``'s table, to add values (and RETURNING) to.

    With RETURNING, no row comes back if the row existed. On PostgreSQL an insert racing another transaction's
    uncommitted insert of the same key waits for it and then does nothing, instead of failing the transaction.
    """
    return dialect_insert(conn)(model).on_conflict_do_nothing()


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


S = TypeVar("S", bound=Executable)
# (dialect name, builder) → the statement it built; see ``prepared``.
_PREPARED: dict[tuple[str, Callable[[str], Any]], Any] = {}


def prepared(conn: AsyncConnection | Connection, build: Callable[[str], S]) -> S:
    """The statement ``build(dialect_name)`` returns, built once per dialect and reused by every later call.

    A hot statement built anew on every request costs ~75 µs of Python before it reaches the database (building
    the expression tree, then computing its cache key to find the compiled form); a reused statement object with
    ``bindparam``s for its values skips both (its cache key is memoized on the object). ``build`` must be a
    module-level function (it is the cache's key) whose statement takes every varying value as a bound parameter
    (in an INSERT or UPDATE, named unlike the table's columns).
    """
    key = (conn.dialect.name, build)
    statement = _PREPARED.get(key)
    if statement is None:
        statement = _PREPARED[key] = build(conn.dialect.name)
    return cast(S, statement)


def dialect_insert_for(dialect: str, model: type[DeclarativeBase]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's own ``INSERT`` into ``model``'s table (with ``on_conflict_do_…``), for ``prepared`` builders
    (which get the dialect's name, not a connection)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(model)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(model)


async def hold_lock(conn: AsyncConnection, key: str, *, shared: bool = False) -> None:
    """Hold the lock named ``key`` until the transaction ends (``shared`` holders exclude only exclusive ones). On
    PostgreSQL a transaction-level advisory lock; SQLite's write transactions are serial already, so nothing."""
    if conn.dialect.name == "postgresql":
        lock = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        await conn.execute(text(f"SELECT {lock}(hashtext(:key))"), {"key": key})


async def take_over(
    conn: AsyncConnection,
    model: type[DeclarativeBase],
    where: ColumnElement[bool],
    holder: InstrumentedAttribute[str],
    lapsed: ColumnElement[bool],
    values: dict[str, Any],
    *,
    dead: Callable[[str], bool],
) -> bool:
    """Take over the lease row ``where`` of ``model`` from its holder when the lease ``lapsed`` or the holder is
    ``dead`` (``core.holders.is_dead``: a process of this machine that has gone), setting ``values`` (the new
    holder and lease); True if this transaction took it. One conditional UPDATE decides, so that of two takers
    exactly one wins, and a holder that renewed meanwhile keeps its lease."""
    current = (await conn.execute(select(holder).where(where))).scalar_one_or_none()
    if current is None:
        return False
    gone = or_(lapsed, holder == current) if dead(current) else lapsed
    result = await conn.execute(update(model).where(where, gone).values(**values))
    return bool(result.rowcount == 1)
