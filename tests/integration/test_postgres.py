"""The PostgreSQL schema: ``dockyard db upgrade`` builds exactly the models' schema, with the column types the code
relies on, and names sort byte-wise even though the cluster's default collation is linguistic (ICU ``en-US``).

Scale-out run only: it needs the test session's PostgreSQL cluster (the embedded run never starts one). The
servers of the scale-out run cover migrating on start and everything else over HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dockyard.models import Manifest, Repository, Tag, metadata
from dockyard.models.base import utcnow
from tests.support.cli import dockyard_cli
from tests.support.postgres import shared_cluster
from tests.support.server import REPO_ROOT

pytestmark = pytest.mark.scaleout_only

# PostgreSQL's names (format_type) for the types the models compile to.
_PG_TYPE_NAMES = {
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "TEXT": "text",
    "BYTEA": "bytea",
    "FLOAT": "double precision",  # CVSS scores, durations (vuln_*)
    "BOOLEAN": "boolean",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "TIMESTAMP WITHOUT TIME ZONE": "timestamp without time zone",
}


def dockyard(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return dockyard_cli(*args, env={**os.environ, "DOCKYARD_DATABASE_URL": database_url})


@pytest.fixture(scope="module")
def migrated_url() -> str:
    """A new database migrated by ``dockyard db upgrade``, twice (the second run finds nothing to do)."""
    url = shared_cluster().create_database("schema")
    for _ in range(2):
        result = dockyard(url, "db", "upgrade")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "database is up to date" in result.stdout
    return url


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(migrated_url)
    yield eng
    await eng.dispose()


async def test_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    def diff(conn: Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_column_types_and_collations_are_the_models(engine: AsyncEngine) -> None:
    """Alembic's comparison ignores a collation the database lacks; check it, and every type, column by column."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
                "CASE WHEN a.attcollation = 0 OR coll.collname = 'default' THEN NULL ELSE coll.collname END "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema() "
                "LEFT JOIN pg_collation coll ON coll.oid = a.attcollation "
                "WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped"
            )
        )
        actual = {(table, column): (type_name, collation) for table, column, type_name, collation in rows}
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    expected = {}
    for table in metadata.sorted_tables:
        for column in table.columns:
            compiled = column.type.compile(dialect=dialect)
            collation = getattr(column.type.dialect_impl(dialect), "collation", None)
            compiled = compiled.split(" COLLATE ")[0]
            if compiled.startswith("VARCHAR("):
                type_name = "character varying" + compiled[len("VARCHAR") :]
            else:
                type_name = _PG_TYPE_NAMES[compiled]
            expected[(table.name, column.name)] = (type_name, collation)
    assert {key: actual.get(key) for key in expected} == expected
    # What the code relies on, spelled out: byte-wise names, 64-bit ids, aware timestamps, bytes as bytea.
    assert actual[("tags", "name")] == ("character varying(128)", "C")
    assert actual[("repositories", "name")] == ("character varying(255)", "C")
    assert actual[("manifests", "id")][0] == "bigint"
    assert actual[("manifests", "created_at")][0] == "timestamp with time zone"
    assert actual[("manifests", "content")][0] == "bytea"


async def test_tags_and_repositories_sort_byte_wise(engine: AsyncEngine) -> None:
    names = ["b", "B", "a", "A", "_x", "0", "Z", "a-b", "a.b", "a_b", "aB", "ab", "latest"]
    async with engine.begin() as conn:
        if shared_cluster().linguistic:
            # The control: this cluster's default collation is linguistic, so byte order is not an accident.
            default = await conn.execute(text("SELECT x FROM (VALUES ('B'), ('a'), ('b')) AS v(x) ORDER BY x"))
            assert list(default.scalars()) == ["a", "b", "B"]
        repo_ids = []
        for name in ("sort/a-b", "sort/a.b", "sort/a_b", "sort/a/b", "sort/ab", "sort/a0"):
            result = await conn.execute(insert(Repository).values(name=name, created_at=utcnow()))
            key = result.inserted_primary_key
            assert key is not None
            repo_ids.append(key[0])
        manifest = await conn.execute(
            insert(Manifest)
            .values(
                repository_id=repo_ids[0],
                digest="sha256:" + "0" * 64,
                media_type="application/vnd.oci.image.manifest.v1+json",
                size=2,
                content=b"{}",
                created_at=utcnow(),
            )
            .returning(Manifest.id)
        )
        manifest_id = manifest.scalar_one()
        await conn.execute(
            insert(Tag),
            [
                {"repository_id": repo_ids[0], "name": n, "manifest_id": manifest_id, "updated_at": utcnow()}
                for n in names
            ],
        )
        tags = select(Tag.name).where(Tag.repository_id == repo_ids[0])
        assert list((await conn.execute(tags.order_by(Tag.name))).scalars()) == sorted(names)
        assert sorted(names)[:3] == ["0", "A", "B"]  # "B" < "a" < "b", as the spec's lexical order wants
        after_b = await conn.execute(tags.where(Tag.name > "B").order_by(Tag.name).limit(2))
        assert list(after_b.scalars()) == ["Z", "_x"]
        repositories = select(Repository.name).where(Repository.name.like("sort/%")).order_by(Repository.name)
        listed = list((await conn.execute(repositories)).scalars())
        assert listed == sorted(listed)
        assert listed == ["sort/a-b", "sort/a.b", "sort/a/b", "sort/a0", "sort/a_b", "sort/ab"]
        await conn.rollback()


def test_migrations_downgrade_and_upgrade_again() -> None:
    url = shared_cluster().create_database("roundtrip")
    assert dockyard(url, "db", "upgrade").returncode == 0
    downgrade = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from alembic import command; from dockyard.migrations.runner import alembic_config; "
            "command.downgrade(alembic_config(sys.argv[1]), 'base')",
            url,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert downgrade.returncode == 0, downgrade.stderr
    result = dockyard(url, "db", "upgrade")
    assert result.returncode == 0, result.stdout + result.stderr
