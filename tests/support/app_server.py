"""``AppServer``: the app ``dockyard serve`` runs, served in a thread of the test process, for tests that only
speak HTTP to a server.

It does what ``dockyard serve`` does before serving — settings from the environment and the server's ``env``,
the data directory, migrations, the secret key, the first-start key and administrator — then serves
``dockyard.app.create_app(settings)`` with the uvicorn configuration of ``dockyard.cli.serve`` (the same HTTP
protocol, with its request-head bound, the same limits and shutdown) on a free loopback port. What is left out is
the process: one worker instead of one per core, no supervisor, no signals, and the log goes to the test
process. Tests where one of those is the point use ``DockyardServer`` (``tests/support/server.py``).

It starts in well under a second where a subprocess takes several (interpreter start, imports, worker
processes), and the test process imports the app once per session.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import uvicorn

from dockyard.app import create_app, first_start, prepare_data_dir, resolve_secret_key
from dockyard.cli.serve import uvicorn_config
from dockyard.migrations.runner import upgrade_sync
from dockyard.settings import Settings, load_settings
from tests.support.server import Server

_PREFIX = "DOCKYARD_"
# Settings that the `dockyard serve` process acts on, not the app: several worker processes, the /metrics listener.
_PROCESS_SETTINGS = {"workers", "metrics_address"}


class AppServer(Server):
    """One Dockyard app served by uvicorn in a background thread; ``stop()`` then ``start()`` again over the same
    data directory is a graceful restart (a new app; nothing of the old one's memory survives)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        embedded: bool = False,
        secure: bool = False,
    ) -> None:
        super().__init__(data_dir, port=port, env=env, embedded=embedded, secure=secure)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def settings(self) -> Settings:
        """What ``dockyard serve --port PORT [--open]`` would read with ``env`` on top of this process's one."""
        for name, value in self.env.items():
            # Only settings can differ per server here; anything else (moto's AWS_* credentials, put there by
            # tests/support/s3.py) must already be this process's, as a subprocess would inherit it.
            if not name.startswith(_PREFIX) and os.environ.get(name) != value:
                raise ValueError(f"{name}: an in-process server cannot have an environment of its own")
        fields: dict[str, object] = {
            name[len(_PREFIX) :].lower(): value for name, value in self.env.items() if name.startswith(_PREFIX)
        }
        if unsupported := sorted(_PROCESS_SETTINGS & fields.keys()):
            raise ValueError(f"{', '.join(unsupported)}: acted on by `dockyard serve` itself; use DockyardServer")
        fields.update(data_dir=self.data_dir, host="127.0.0.1", port=self.port, open=None if self.secure else True)
        return load_settings(None, **fields, workers=1)

    def start(self, timeout: float = 60.0) -> None:
        """Prepare the deployment, start serving and wait until the app's lifespan has started."""
        if self._thread is not None:
            raise RuntimeError("already started")
        self.seed_database()
        settings = self.settings()
        self._failure = None
        self._thread = threading.Thread(target=self._serve, args=(settings,), name=f"dockyard-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (self._server is not None and self._server.started):
            if not self._thread.is_alive():
                self._thread = None
                raise RuntimeError(f"dockyard did not start on port {self.port}") from self._failure
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dockyard did not become ready within {timeout} s")
            time.sleep(0.02)

    def _serve(self, settings: Settings) -> None:
        try:
            # What `dockyard serve` does before it serves (dockyard.cli.main.serve).
            prepare_data_dir(settings)
            upgrade_sync(settings.effective_database_url)
            settings = resolve_secret_key(settings)
            asyncio.run(first_start(settings))
            self._server = uvicorn.Server(uvicorn_config(settings, create_app(settings)))
            self._server.run()
        except BaseException as exc:  # reported by start() or stop(), in the test's thread
            self._failure = exc

    def stop(self) -> None:
        """Stop as on SIGTERM: in-flight requests finish, then the lifespan's shutdown runs."""
        if self._thread is None:
            return
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(timeout=120)
        alive = self._thread.is_alive()
        self._thread, self._server = None, None
        if alive:
            raise RuntimeError(f"dockyard on port {self.port} did not stop within 120 s")
        if self._failure is not None:
            raise RuntimeError(f"dockyard on port {self.port} failed") from self._failure
