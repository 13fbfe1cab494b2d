"""A throwaway PostgreSQL cluster for the scale-out test run, from the server binaries the distribution ships.

``initdb`` and ``pg_ctl`` (Debian: ``/usr/lib/postgresql/<version>/bin``, package ``postgresql``) build and
start a cluster in a temporary directory: loopback only, on a free port, its unix socket inside that directory,
trust authentication, durability off (the cluster dies with the test session). PostgreSQL refuses to run as
root, so as root the cluster belongs to the unprivileged ``postgres`` user the package creates (or to the user
named by ``DOCKYARD_TEST_PG_USER``).

The cluster's default collation is ICU's linguistic ``en-US`` (as on a typical production server), so any
ordering that must be byte-wise and is not declared ``COLLATE "C"`` shows up as a test failure rather than
passing by the accident of a ``C`` cluster.

Every server gets a database of its own (``create_database``) so that tests stay independent.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

from tests.support.ports import free_port
from tests.support.tools import missing

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "dockyard"
_PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")
# Settings for a cluster nobody needs to survive a crash: no fsync, no full-page writes, no waiting for WAL.
_CONFIG = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "max_wal_size": "1GB",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
    "log_connections": "off",
    "log_checkpoints": "off",
}


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot run here (as root, there is no unprivileged user to run it as)."""


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding the server programs, else ``pg_ctl``'s on PATH."""
    override = os.environ.get("DOCKYARD_TEST_PG_BINDIR")
    candidates = [Path(override)] if override else []
    if PG_ROOT.is_dir():
        versions = sorted((p for p in PG_ROOT.iterdir() if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
        candidates.extend(p / "bin" for p in versions)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if all((candidate / program).is_file() for program in _PROGRAMS):
            return candidate
    return None


def require_postgres() -> Path:
    """The server binaries' directory; a missing PostgreSQL skips the test locally and fails it under CI=true."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        missing("PostgreSQL server binaries not found (package postgresql; make test installs it when run as root)")
    return bin_dir


class PostgresCluster:
    """One cluster: ``start()``, ``create_database()`` as often as needed, ``stop()`` (which deletes it)."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.base: Path | None = None
        self.port = 0
        self.version = ""
        self.linguistic = False  # the default collation is ICU's en-US, not byte order
        self._user: str | None = None
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._template_lock = threading.Lock()
        self._migrated_template: str | None = None

    @property
    def data_dir(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base / "run"

    @property
    def log_path(self) -> Path:
        assert self.base is not None, "cluster not started"
        return self.base / "postgres.log"

    @property
    def running(self) -> bool:
        return self.base is not None and self.port != 0

    def _owner(self) -> str | None:
        """The user the cluster runs as: None (ourselves) unless we are root."""
        if os.geteuid() != 0:
            return None
        name = os.environ.get("DOCKYARD_TEST_PG_USER", "postgres")
        try:
            pwd.getpwnam(name)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root and there is no user {name!r} to run PostgreSQL as "
                "(the postgresql package creates 'postgres'; or set DOCKYARD_TEST_PG_USER)"
            ) from None
        return name

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            user=self._user,
            group=pwd.getpwnam(self._user).pw_gid if self._user else None,
            extra_groups=[] if self._user else None,
            cwd=self.base,
            env={**os.environ, "HOME": str(self.base), "LC_ALL": "C.UTF-8", "PGTZ": "UTC"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def start(self) -> None:
        self._user = self._owner()
        # Not under pytest's basetemp: its directories are private to root, and the cluster's user must reach it.
        self.base = Path(tempfile.mkdtemp(prefix="dockyard-pg-"))
        self.socket_dir.mkdir()
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (self.base, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        major = int(re.findall(r"\d+", self._run("postgres", "--version").stdout)[0])
        # ICU as the default collation provider needs PostgreSQL 15; older clusters sort like C by default.
        self.linguistic = major >= 15
        locale = ["--locale-provider", "icu", "--icu-locale", "en-US"] if self.linguistic else []
        self._run(
            "initdb", "--pgdata", str(self.data_dir), "--username", SUPERUSER, "--auth", "trust",
            "--encoding", "UTF8", "--locale", "C.UTF-8", *locale, "--no-sync",
        )  # fmt: skip
        config = {**_CONFIG, "unix_socket_directories": f"'{self.socket_dir}'"}
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write("\n# dockyard test cluster\n")
            fh.writelines(f"{key} = {value}\n" for key, value in config.items())
        for attempt in range(5):
            port = free_port()
            try:
                self._run(
                    "pg_ctl", "start", "--pgdata", str(self.data_dir), "--log", str(self.log_path),
                    "--wait", "--timeout", "60", "--options", f"-p {port}",
                )  # fmt: skip
            except RuntimeError:
                if attempt == 4 or "could not bind" not in self._log_text():
                    raise RuntimeError(f"PostgreSQL did not start:\n{self._log_text()[-4000:]}") from None
                continue
            self.port = port
            break
        self.version = self.psql("SHOW server_version").strip()

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` (one statement; CREATE DATABASE may not run in a transaction block) and return its rows."""
        result = self._run(
            "psql", "--no-psqlrc", "--quiet", "--tuples-only", "--no-align", "--set", "ON_ERROR_STOP=1",
            "--host", str(self.socket_dir), "--port", str(self.port), "--username", SUPERUSER,
            "--dbname", database, "--command", sql,
        )  # fmt: skip
        return result.stdout

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, hint: str = "", *, migrated: bool = False) -> str:
        """A new database, empty or (``migrated``) a copy of one migrated to the head revision (made once, see
        ``tests/support/schema.py``); returns its ``postgresql+asyncpg://`` URL."""
        template = self._template() if migrated else None
        with self._lock:
            number = next(self._names)
        label = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")[:24]
        name = f"dy{number}_{label}_{uuid.uuid4().hex[:6]}" if label else f"dy{number}_{uuid.uuid4().hex[:6]}"
        self.psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    def _template(self) -> str:
        with self._template_lock:
            if self._migrated_template is None:
                from dockyard.migrations.runner import upgrade_sync
                from tests.support.schema import in_thread

                name = f"dy_template_{uuid.uuid4().hex[:6]}"
                self.psql(f'CREATE DATABASE "{name}"')
                in_thread(lambda: upgrade_sync(self.url(name)))
                self._migrated_template = name
            return self._migrated_template

    def stop(self) -> None:
        """Stop the cluster (immediately: nothing in it is worth a checkpoint) and delete its directory."""
        if self.base is None:
            return
        if self.port:
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "immediate", "--wait")
            self.port = 0
        # Deleted by a process of its own, not waited for: a session's cluster holds a database per server (~100
        # per test process, ~1.6 GiB), and deleting it took 5 s on a quiet machine and ~30 s at the end of a busy
        # scale-out run — the last thing each test process did. Nothing reuses the (random) directory name.
        # (`sh` puts `rm` in the background and exits: nothing is left for this process to reap.)
        detached = 'rm -rf -- "$1" </dev/null >/dev/null 2>&1 &'
        if subprocess.run(["sh", "-c", detached, "sh", str(self.base)], check=False).returncode != 0:
            shutil.rmtree(self.base, ignore_errors=True)
        self.base = None


_shared: PostgresCluster | None = None
_shared_lock = threading.Lock()


def shared_cluster() -> PostgresCluster:
    """The test session's cluster, started on first use (skips or fails the test if PostgreSQL is missing)."""
    global _shared
    bin_dir = require_postgres()
    with _shared_lock:
        if _shared is None:
            cluster = PostgresCluster(bin_dir)
            atexit.register(cluster.stop)
            try:
                cluster.start()
            except PostgresUnavailable as exc:
                cluster.stop()
                missing(str(exc))
            except BaseException:
                cluster.stop()
                raise
            _shared = cluster
        return _shared


def stop_shared_cluster() -> None:
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.stop()
            _shared = None
