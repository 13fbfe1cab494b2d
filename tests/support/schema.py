"""Migrated databases in a fraction of the time: the migrations run once per test process into a template, and a
new database is a copy of it — a SQLite file copied, a PostgreSQL database created ``TEMPLATE`` it
(``postgres.PostgresCluster.create_database(migrated=True)``).

Running the whole migration chain costs ~3 s of CPU, most of a server's start on a new data directory, and the
suite starts well over a hundred servers and migrates as many databases of its own. A copy is what the chain
produces (nothing in a migration depends on the server or the time), so servers and services see the same
schema; the chain itself still runs in the tests of ``tests/unit/migrations`` and ``tests/integration/
test_postgres.py``, in ``test_make_run.py`` (the README's commands on a new data directory), ``test_json_logs.py``
and ``test_startup_imports.py`` (``dockyard serve`` on a new data directory), and the CLI tests.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from dockyard.migrations.runner import upgrade_sync

_lock = threading.Lock()
_sqlite_template: Path | None = None


def in_thread(work: Callable[[], None]) -> None:
    """Run ``work`` in a thread of its own (it may start an event loop whatever the caller runs in)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="migrate-template")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def sqlite_template() -> Path:
    """A SQLite file migrated to the head revision, made once per process."""
    global _sqlite_template
    with _lock:
        if _sqlite_template is None:
            directory = Path(tempfile.mkdtemp(prefix="dockyard-schema-"))
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            path = directory / "template.db"
            in_thread(lambda: upgrade_sync(f"sqlite+aiosqlite:///{path}"))
            for leftover in ("-wal", "-shm"):  # closed cleanly: everything is in the main file
                assert not Path(f"{path}{leftover}").exists() or Path(f"{path}{leftover}").stat().st_size == 0
            _sqlite_template = path
        return _sqlite_template


def seed_sqlite(path: Path) -> None:
    """Make ``path`` a migrated SQLite database unless something is there already (a restart, an old schema a
    test wrote on purpose)."""
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        shutil.copyfile(sqlite_template(), partial)
        os.chmod(partial, 0o600)
        with contextlib.suppress(FileExistsError):  # servers seeding one directory at once: the first one wins
            os.link(partial, path)  # never over a database a server may have opened already
    finally:
        partial.unlink(missing_ok=True)
