"""How ``dockyard serve`` runs the HTTP server: in this process (one worker), or — several workers — by replacing
this process with the small supervisor of ``dockyard.cli.supervisor``, which starts the worker processes
(``dockyard.cli.server_worker``) on the socket bound here; the optional ``/metrics`` listener; HTTPS with
``--tls-cert``/``--tls-key`` (``dockyard.http.tls``: the context each process listens with, reloaded when the files
change); and the warnings an operator sees at start.

The supervisor is entered with ``os.execv`` (same PID, so signals sent to ``dockyard serve`` reach it), after the
preparation (migrations, first start) has run here: what that loaded — SQLAlchemy, Alembic, the application — goes
with the old process image instead of staying in the supervisor for the server's lifetime. Each worker asks the
kernel for SIGTERM when the supervisor dies (``dockyard.app.die_with_supervisor``), so a supervisor killed
outright does not leave workers serving.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import socket
import ssl
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from dockyard.cli.supervisor import STARTUP_FAILURE
from dockyard.http.tls import ReloadingContext
from dockyard.settings import (
    Settings,
    enable_multiprocess_metrics,
    mark_supervisor,
    serialize_for_workers,
    split_address,
)

if TYPE_CHECKING:
    import uvicorn
    from prometheus_client import CollectorRegistry
    from uvicorn._types import ASGIApplication

    from dockyard.app import DockyardApp
    from dockyard.http.metrics_listener import MetricsListener

T = TypeVar("T")

log = logging.getLogger("dockyard")

GRACEFUL_SECONDS = 30  # in-flight requests finish within this after SIGTERM (docs/deploy.md)
STOP_MARGIN = 15  # a worker still running this long after its requests' and jobs' grace (jobs_stop_grace_seconds)
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


def tls_context(settings: Settings) -> ReloadingContext | None:
    """The reloading TLS context of ``--tls-cert``/``--tls-key`` (``dockyard.http.tls``), or None for plain HTTP.
    A pair that does not load is a ``click.ClickException`` naming the files."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    try:
        return ReloadingContext(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise click.ClickException(
            f"cannot use the TLS certificate {settings.tls_cert} with the key {settings.tls_key}: {exc}"
        ) from exc


def uvicorn_config(settings: Settings, app: ASGIApplication | DockyardApp | str, *, workers: int = 1) -> uvicorn.Config:
    """The uvicorn configuration of a server process. (uvicorn is imported here, not by ``dockyard serve`` before it
    becomes the supervisor: that would only lengthen the start.)"""
    import uvicorn

    from dockyard.http.server import PROTOCOL as HTTP_PROTOCOL

    tls = tls_context(settings)
    return uvicorn.Config(
        app,
        factory=isinstance(app, str),
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's records go to dockyard.logs' JSON handler (configure_logging), not its own
        access_log=False,
        loop="uvloop",
        ws="none",  # no WebSocket routes: the websockets library stays unloaded
        http=HTTP_PROTOCOL,  # httptools, with the request head bounded (uvicorn's own has no bound)
        h11_max_incomplete_event_size=settings.max_request_header_bytes,
        timeout_keep_alive=settings.keep_alive_seconds,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
        server_header=False,
        # X-Forwarded-* are believed from `trusted_proxies` only, by the app (dockyard.http.proxies); uvicorn's own
        # handling would trust 127.0.0.1 (or $FORWARDED_ALLOW_IPS) behind the app's back.
        proxy_headers=False,
        # HTTPS with the certificate reloaded when its files change (each process keeps its own context).
        ssl_context_factory=None if tls is None else (lambda _config, _default: tls.listener),
    )


def _metrics_listener(settings: Settings, registry: Callable[[], CollectorRegistry]) -> MetricsListener | None:
    if not settings.metrics_address:
        return None
    from dockyard.http.metrics_listener import MetricsListener

    try:
        return MetricsListener(settings.metrics_address, registry, settings.metrics_token)
    except OSError as exc:
        raise click.ClickException(f"metrics_address {settings.metrics_address}: {exc.strerror or exc}") from exc


def bind_listener(settings: Settings) -> socket.socket:
    """The server's listening socket, bound now — before anything says "serving on" — so that a busy port or a
    wrong address is an error at once. (Bound as uvicorn binds: ``SO_REUSEADDR``, inheritable for the workers.)"""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def built_then_frozen(build: Callable[[], T]) -> T:
    """``build()`` (the application) with no cyclic collection while it runs (~5 % of a start); then everything made
    so far — modules, routes, models, the application — goes to the permanent generation, which later collections
    do not scan again (a full collection over the ~220,000 objects of the imported application took 0.16 CPU-s)."""
    gc.disable()
    try:
        return build()
    finally:
        gc.freeze()
        gc.enable()


def run_server(settings: Settings, sock: socket.socket) -> None:
    """Serve on ``sock`` until stopped: in this process (one worker), or by becoming the supervisor of several."""
    if settings.effective_workers > 1:
        exec_supervisor(settings, sock)
    import uvicorn

    from dockyard.app import create_app

    app = built_then_frozen(lambda: create_app(settings))
    server = uvicorn.Server(uvicorn_config(settings, app))
    listener = _metrics_listener(settings, app.state.metrics.exposition_registry)
    try:
        server.run(sockets=[sock])
    finally:
        if listener is not None:
            listener.close()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def exec_supervisor(settings: Settings, sock: socket.socket) -> None:
    """Replace this process with ``dockyard.cli.supervisor`` serving on ``sock``; never returns. The workers find
    the settings, the supervisor's PID and the metrics directory in the environment they inherit."""
    # One metrics directory per server (replicas may share a data directory); the supervisor removes it at exit.
    metrics_dir = tempfile.mkdtemp(prefix="dockyard-metrics-")
    enable_multiprocess_metrics(Path(metrics_dir))
    serialize_for_workers(settings)
    mark_supervisor()  # this PID: execv keeps it
    argv = [
        sys.executable,
        "-m",
        "dockyard.cli.supervisor",
        f"--fd={sock.fileno()}",
        f"--workers={settings.effective_workers}",
        f"--stop-timeout={GRACEFUL_SECONDS + settings.jobs_stop_grace_seconds + STOP_MARGIN}",  # …is killed
        f"--healthcheck={HEALTHCHECK_SECONDS}",
        f"--log-level={settings.log_level}",
        f"--remove-on-exit={metrics_dir}",
        *(["--metrics"] if settings.metrics_address else []),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 (our own interpreter and module, no shell)
