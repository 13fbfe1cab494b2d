"""How ``dockyard serve`` runs the HTTP server: one process, or a supervisor and its worker processes; the
optional ``/metrics`` listener; and the warnings an operator sees at start.

The supervisor is uvicorn's, made stricter about stopping. On SIGTERM or SIGINT it closes its own copy of the
listening socket at once — else the kernel would keep queueing new connections on a port no worker accepts on
any more while in-flight requests finish — then stops the workers, and kills any still running after
``STOP_TIMEOUT`` seconds. Each worker asks the kernel for SIGTERM when the supervisor dies
(``dockyard.app.app_from_environment``), so a supervisor killed outright does not leave workers serving.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
import uvicorn
from prometheus_client import CollectorRegistry
from uvicorn._types import ASGIApplication
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from dockyard.http.metrics_listener import MetricsListener
from dockyard.http.middleware import multiprocess_registry
from dockyard.http.server import PROTOCOL as HTTP_PROTOCOL
from dockyard.settings import (
    Settings,
    enable_multiprocess_metrics,
    mark_supervisor,
    serialize_for_workers,
    split_address,
)

if TYPE_CHECKING:
    from dockyard.app import DockyardApp

log = logging.getLogger("dockyard")

GRACEFUL_SECONDS = 30  # in-flight requests finish within this after SIGTERM (docs/deploy.md)
JOBS_GRACE_SECONDS = 30  # then running background jobs (dockyard.jobs.registry.running_jobs)
STOP_TIMEOUT = GRACEFUL_SECONDS + JOBS_GRACE_SECONDS + 15  # a worker still running after this is killed
HEALTHCHECK_SECONDS = 30  # a worker that does not answer the supervisor's ping for this long is replaced


def is_loopback(host: str) -> bool:
    """Whether a listen address is reachable from this machine only (``0.0.0.0``, ``::`` and an empty host
    listen on every interface)."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to, others may reach it


def startup_warnings(settings: Settings) -> list[str]:
    """What an operator should know before the server starts."""
    warnings: list[str] = []
    if settings.open:
        warnings.append("--open: authentication is off; anyone who can reach this server may pull, push and delete")
    if not settings.base_url and not is_loopback(settings.host):
        warnings.append(
            f"base_url is not set while listening on {settings.host}: the token realm follows each request's "
            "Host header; set DOCKYARD_BASE_URL to the public URL in production"
        )
    if (
        settings.metrics_address
        and not settings.metrics_token
        and not is_loopback(split_address(settings.metrics_address)[0])
    ):
        warnings.append(f"/metrics is served on {settings.metrics_address} without metrics_token")
    return warnings


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor; on SIGTERM/SIGINT it stops listening first and never waits for ever."""

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()

    def _stop_listening(self) -> None:
        # The workers hold copies of the socket and close theirs as their shutdown starts.
        for sock in self.sockets:
            sock.close()

    def join_all(self) -> None:
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.processes:
            process.process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.process.is_alive():
                log.error("worker process %s did not stop within %s s; killing it", process.pid, STOP_TIMEOUT)
                process.kill()
                process.process.join()


def uvicorn_config(settings: Settings, app: ASGIApplication | DockyardApp | str, *, workers: int = 1) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        loop="uvloop",
        http=HTTP_PROTOCOL,  # httptools, with the request head bounded (uvicorn's own has no bound)
        h11_max_incomplete_event_size=settings.max_request_header_bytes,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        server_header=False,
        # X-Forwarded-* are believed from `trusted_proxies` only, by the app (dockyard.http.proxies); uvicorn's own
        # handling would trust 127.0.0.1 (or $FORWARDED_ALLOW_IPS) behind the app's back.
        proxy_headers=False,
    )


def _metrics_listener(settings: Settings, registry: Callable[[], CollectorRegistry]) -> MetricsListener | None:
    if not settings.metrics_address:
        return None
    try:
        return MetricsListener(settings.metrics_address, registry, settings.metrics_token)
    except OSError as exc:
        raise click.ClickException(f"metrics_address {settings.metrics_address}: {exc.strerror or exc}") from exc


def run_server(settings: Settings) -> None:
    """Serve until stopped: in this process (one worker) or under a ``Supervisor``."""
    listener: MetricsListener | None = None
    if settings.effective_workers == 1:
        from dockyard.app import create_app

        app = create_app(settings)
        server = uvicorn.Server(uvicorn_config(settings, app))
        listener = _metrics_listener(settings, app.state.metrics.exposition_registry)
        try:
            server.run()
        finally:
            if listener is not None:
                listener.close()
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)
        return
    # One directory per server (replicas may share a data directory), removed when the server exits.
    metrics_dir = Path(tempfile.mkdtemp(prefix="dockyard-metrics-"))
    try:
        enable_multiprocess_metrics(metrics_dir)
        serialize_for_workers(settings)
        mark_supervisor()
        listener = _metrics_listener(settings, lambda: multiprocess_registry(str(metrics_dir)))
        config = uvicorn_config(settings, "dockyard.app:app_from_environment", workers=settings.effective_workers)
        Supervisor(config, sockets=[config.bind_socket()]).run()
    finally:
        if listener is not None:
            listener.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
