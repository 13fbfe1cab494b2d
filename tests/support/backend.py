"""Which deployment the test servers run as, chosen by ``DOCKYARD_TEST_BACKEND`` (``scripts/run-tests.sh`` runs both).

- ``embedded`` (default): SQLite and the filesystem under the server's data directory, as ``dockyard serve``
  with nothing configured.
- ``scaleout``: PostgreSQL (a database of its own per data directory, in one throwaway cluster per test session,
  see ``tests/support/postgres.py``), and blobs in a bucket of their own on moto's S3 server
  (``scaleout_storage_env``; ``DOCKYARD_TEST_SCALEOUT_STORAGE=filesystem`` keeps them on disk instead).

Every ``DockyardServer`` asks ``server_env()`` for its settings, so fixtures and tests that start servers follow
the backend without knowing about it. Tests that only make sense on one backend say so with
``@pytest.mark.embedded_only`` / ``@pytest.mark.scaleout_only`` (tests/conftest.py skips them on the other).
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

EMBEDDED = "embedded"
SCALEOUT = "scaleout"
BACKENDS = (EMBEDDED, SCALEOUT)
ENV = "DOCKYARD_TEST_BACKEND"


def current() -> str:
    value = os.environ.get(ENV, EMBEDDED).strip().lower() or EMBEDDED
    if value not in BACKENDS:
        raise ValueError(f"{ENV}={value!r}: expected one of {', '.join(BACKENDS)}")
    return value


def is_scaleout() -> bool:
    return current() == SCALEOUT


STORAGE_ENV = "DOCKYARD_TEST_SCALEOUT_STORAGE"
STORAGES = ("filesystem", "s3")


def scaleout_storage() -> str:
    """Where scale-out servers keep blobs: ``s3`` (a bucket of their own on moto, the default) or
    ``filesystem`` (under the data directory, with ``DOCKYARD_TEST_SCALEOUT_STORAGE=filesystem``)."""
    value = os.environ.get(STORAGE_ENV, "s3").strip().lower() or "s3"
    if value not in STORAGES:
        raise ValueError(f"{STORAGE_ENV}={value!r}: expected one of {', '.join(STORAGES)}")
    return value


def scaleout_storage_env() -> dict[str, str]:
    """Blob storage settings for a new scale-out deployment: none for the filesystem, else a fresh S3 bucket
    on the session's moto server (``tests/support/s3.py``)."""
    if scaleout_storage() == "filesystem":
        return {}
    from tests.support.s3 import shared_moto_server

    moto = shared_moto_server()
    return {**moto.env, "DOCKYARD_STORAGE_URL": moto.storage_url(moto.make_bucket())}


_deployments: dict[Path, dict[str, str]] = {}
_deployments_lock = threading.Lock()


def server_env(data_dir: Path, *, migrated: bool = True) -> dict[str, str]:
    """Settings (as ``DOCKYARD_*`` environment variables) for a server over ``data_dir``.

    One data directory is one deployment: servers started over the same directory (restarts, replicas) share
    its database and blob store, as they share the SQLite file and the files in the embedded run. The database is
    a copy of a migrated template unless ``migrated`` is False (for the first server of a deployment: then it is
    empty, and the server migrates it).
    """
    if current() == EMBEDDED:
        return {}
    key = data_dir.resolve()
    with _deployments_lock:
        env = _deployments.get(key)
        if env is None:
            from tests.support.postgres import shared_cluster

            env = {
                "DOCKYARD_DATABASE_URL": shared_cluster().create_database(key.parent.name, migrated=migrated),
                # Replicas of one deployment share the server secret (it seals the token-signing keys in the DB).
                "DOCKYARD_SECRET_KEY": "test-secret-" + key.parent.name.ljust(16, "x"),
            }
            env.update(scaleout_storage_env())
            _deployments[key] = env
        return dict(env)


def shutdown() -> None:
    """Stop the session's shared services (the PostgreSQL cluster); the deployments made on them are gone."""
    from tests.support.postgres import stop_shared_cluster

    with _deployments_lock:
        _deployments.clear()
    stop_shared_cluster()


def describe() -> str:
    """One line for pytest's header."""
    if current() == EMBEDDED:
        return f"{ENV}={EMBEDDED}: SQLite + filesystem blob storage"
    from tests.support.postgres import find_bin_dir

    bin_dir = find_bin_dir()
    where = f"PostgreSQL from {bin_dir}" if bin_dir else "PostgreSQL NOT INSTALLED"
    return f"{ENV}={SCALEOUT}: {where} + {scaleout_storage()} blob storage"


def execute_sql(database_url: str, statement: str, **params: Any) -> int:
    """Run one SQL statement against a server's database (SQLite or PostgreSQL) and return the rows it changed."""
    return int(_run_sql(database_url, statement, params, fetch=False))


def query_sql(database_url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one SELECT against a server's database and return its rows (for tests that check what is stored)."""
    rows: list[tuple[Any, ...]] = _run_sql(database_url, statement, params, fetch=True)
    return rows


def _run_sql(database_url: str, statement: str, params: dict[str, Any], *, fetch: bool) -> Any:
    """One statement on its own engine: the rows it returned (``fetch``) or the number it changed.

    For tests that reach behind the API, e.g. to age a row instead of sleeping. Runs on a thread of its own, so
    it works from sync tests and from inside a running event loop alike.
    """
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> Any:
        connect_args = {"timeout": 30} if database_url.startswith("sqlite") else {}
        engine = create_async_engine(database_url, connect_args=connect_args)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return [tuple(row) for row in result.all()] if fetch else int(result.rowcount)
        finally:
            await engine.dispose()

    outcome: list[Any] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(run()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return outcome[0]
