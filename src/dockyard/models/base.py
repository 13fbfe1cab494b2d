"""Declarative base, naming convention and portable column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, Integer, MetaData, String, Table, TextClause, event
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def ascii_string(length: int) -> String:
    """A string column that compares and sorts byte-wise ("ASCIIbetical") on every engine."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def partial_index(name: str, *columns: str, where: TextClause, unique: bool = False) -> Index:
    """An index over the rows matching ``where`` on SQLite and on PostgreSQL (the migrations create the same).

    ``postgresql_where`` is attached when its table is created on PostgreSQL, not passed here: naming a dialect's
    option makes SQLAlchemy import that dialect, and every SQLite process would load the PostgreSQL one (~2 MiB)."""
    index = Index(name, *columns, unique=unique, sqlite_where=where)

    def on_postgresql(table: Table, connection: Any, **_: Any) -> None:
        if connection.dialect.name == "postgresql":
            index.dialect_options["postgresql"]["where"] = where

    def attached(_index: Index, table: Table) -> None:
        event.listen(table, "before_create", on_postgresql)

    event.listen(index, "after_parent_attach", attached)
    return index


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every engine (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = metadata
