"""Partial indexes (``models.base.partial_index``) carry their WHERE on both dialects, and naming the PostgreSQL
option does not load SQLAlchemy's PostgreSQL dialect into a process that never talks to PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import create_mock_engine

from dockyard.models import metadata

PARTIAL = {
    "ix_jobs_ordering_key": "WHERE state IN ('queued', 'running')",
    "uq_jobs_dedupe_key": "WHERE state IN ('queued', 'running')",
    "uq_builds_queued": "WHERE state = 'queued'",
}


@pytest.mark.parametrize("url", ["sqlite://", "postgresql://"])
def test_partial_indexes_are_created_with_their_where_clause(url: str) -> None:
    created: list[str] = []

    def record(statement: Any, *_: Any, **__: Any) -> None:
        created.append(str(statement.compile(dialect=engine.dialect)))

    engine = create_mock_engine(url, record)
    metadata.create_all(engine, checkfirst=False)
    for name, where in PARTIAL.items():
        [ddl] = [sql for sql in created if f"INDEX {name} " in sql]
        assert ddl.strip().endswith(where), ddl


def test_the_models_do_not_load_the_postgresql_dialect() -> None:
    probe = "import sys, dockyard.models; print('sqlalchemy.dialects.postgresql' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
