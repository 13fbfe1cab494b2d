"""Test servers: ``Server``, what tests use of a Dockyard server they talk HTTP to (its URL, its database, its
administrator), and ``DockyardServer``, a real ``dockyard serve`` in a subprocess on a free loopback port — for
tests where the process is the point (a crash, a kill, a restart, signals, several workers, real clients, its
log). ``tests/support/app_server.py`` runs the same app in the test process instead, which starts in a fraction
of the time.

Each server runs on the test backend (``tests/support/backend.py``): embedded, or scale-out with a PostgreSQL
database of its own.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import backend, forkserver
from tests.support.ports import free_port
from tests.support.schema import seed_sqlite

REPO_ROOT = Path(__file__).resolve().parents[2]


class Server(abc.ABC):
    """One Dockyard deployment over ``data_dir`` that tests talk HTTP to, however it runs.

    ``env`` adds or overrides settings on top of the backend's (``backend.server_env``: servers over one data
    directory share one database); ``embedded=True`` runs this server embedded whatever the backend.
    ``secure=True`` runs with authentication on (the default server is ``--open``); its administrator is
    ``admin`` / ``ADMIN_PASSWORD``. A new deployment's database is a copy of a migrated template unless
    ``migrated=False``: then it starts empty and the server's own start migrates it.
    """

    ADMIN_PASSWORD = "admin-password-for-tests"
    # HTTPS servers (DOCKYARD_TLS_CERT/KEY in ``env``) set these: the scheme of ``url`` and what verifies it.
    scheme = "http"
    verify: ssl.SSLContext | bool = True

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        embedded: bool = False,
        secure: bool = False,
        migrated: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.secure = secure
        self.migrated = migrated
        self.port = port or free_port()
        self.env = {
            **({} if embedded else backend.server_env(data_dir, migrated=migrated)),
            "DOCKYARD_ADMIN_PASSWORD": self.ADMIN_PASSWORD,
            **(env or {}),
        }

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def database_url(self) -> str:
        return self.env.get("DOCKYARD_DATABASE_URL") or f"sqlite+aiosqlite:///{self.data_dir.resolve()}/dockyard.db"

    def execute_sql(self, statement: str, **params: Any) -> int:
        """Run one SQL statement on this server's database (either engine); returns the rows changed."""
        return backend.execute_sql(self.database_url, statement, **params)

    def query_sql(self, statement: str, **params: Any) -> list[tuple[Any, ...]]:
        """Run one SELECT on this server's database (either engine); returns its rows."""
        return backend.query_sql(self.database_url, statement, **params)

    def seed_database(self) -> None:
        """Give a new embedded deployment its database already migrated, a copy of a template (as the scale-out
        one gets from ``backend.server_env``; see ``tests/support/schema.py``); an existing one is left alone."""
        if self.migrated and "DOCKYARD_DATABASE_URL" not in self.env:
            seed_sqlite(self.data_dir / "dockyard.db")

    @abc.abstractmethod
    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until the server is ready."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop gracefully (in-flight requests finish, shutdown handlers run)."""


class DockyardServer(Server):
    """Start, stop, kill and restart one ``dockyard serve`` process over the same data directory (and database);
    its output goes to ``log_path``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
        embedded: bool = False,
        secure: bool = False,
        migrated: bool = True,
    ) -> None:
        super().__init__(data_dir, port=port, env=env, embedded=embedded, secure=secure, migrated=migrated)
        # One worker unless a test asks for more: a second worker process doubles the start (~3 s → ~6 s on this
        # 2-core kind of machine) and the suite starts well over a hundred servers. The session-wide `server` the
        # real clients use, the replicas and the shutdown tests run several.
        self.env = {"DOCKYARD_WORKERS": "1", **self.env}
        self.log_path = log_path or data_dir.parent / f"dockyard-{self.port}.log"
        self.process: subprocess.Popen[bytes] | forkserver.ForkedProcess | None = None

    @property
    def workers(self) -> int:
        configured = int(self.env.get("DOCKYARD_WORKERS", "0") or 0)
        return configured or max(1, min(os.cpu_count() or 1, 8))

    def _started_workers(self, log_offset: int) -> int:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(log_offset)
                return fh.read().count(b"Application startup complete")
        except OSError:
            return 0

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until every worker process has finished its start-up and the server is ready."""
        self.seed_database()
        env = {**os.environ, "DOCKYARD_DATA_DIR": str(self.data_dir), **self.env}
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        args = ["serve", "--port", str(self.port), *([] if self.secure else ["--open"])]
        if forkserver.enabled():
            # Forked from a process that has imported the app (tests/support/forkserver.py), in a session of its
            # own as below.
            self.process = forkserver.shared(REPO_ROOT).spawn(args, env=env, cwd=REPO_ROOT, log_path=self.log_path)
        else:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    forkserver.command(args),
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=REPO_ROOT,
                    start_new_session=True,  # its own process group: kill() takes the worker processes too
                )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._kill_group()  # its workers, if any outlived it
                self.process = None
                raise RuntimeError(f"dockyard exited with {code}: {self.log_tail()}")
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=1, verify=self.verify).status_code == 200
            except httpx.HTTPError:
                ready = False
            if ready and self._started_workers(log_offset) >= self.workers:
                return
            time.sleep(0.1)
        tail = self.log_tail()
        self._kill_group()  # a server that did not come up is not left running behind the failed test
        self.process = None
        raise RuntimeError(f"dockyard did not become ready: {tail}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._kill_group()
        self.process = None

    def kill(self) -> None:
        """SIGKILL to the server and its worker processes: no shutdown handlers run, as in a crash."""
        if self.process is not None:
            self._kill_group()
        self.process = None

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        # Give the kernel a moment to release the listening socket before a restart binds it again.
        time.sleep(0.1)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
