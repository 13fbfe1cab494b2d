"""Composition root: ``create_app(settings)`` wires DB, storage and services and mounts every surface.

Nothing imports this module except the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.db.engine import Database
from dockyard.http import ops
from dockyard.http.middleware import Metrics, ObservabilityMiddleware
from dockyard.http.oci.routes import oci_app
from dockyard.jobs.periodic import run_periodically
from dockyard.logs import configure_logging
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.settings import Settings, load_serialized, multiprocess_metrics_dir
from dockyard.storage.factory import open_blob_store

log = logging.getLogger("dockyard")


def create_app(settings: Settings) -> DockyardApp:
    metrics = Metrics(multiprocess_dir=multiprocess_metrics_dir())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
        store = open_blob_store(settings.effective_storage_url, fsync=settings.fsync)
        registry = Registry.build(RegistryContext(db=db, store=store, settings=settings))
        app.state.registry = registry
        background: list[asyncio.Task[None]] = []
        if settings.gc_interval_seconds:

            async def collect() -> None:
                metrics.record_gc(await registry.gc.run())

            interval = timedelta(seconds=settings.gc_interval_seconds)
            background.append(
                asyncio.create_task(run_periodically(db, "gc", interval, collect, ttl=timedelta(hours=1)))
            )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await store.close()
            await db.close()

    shell = Starlette(routes=ops.ROUTES, lifespan=lifespan)
    shell.state.metrics = metrics
    shell.state.settings = settings
    return DockyardApp(shell, oci_app(), metrics, log_requests=settings.access_log)


class DockyardApp:
    """The ASGI entry point. ``/v2`` goes straight to the OCI surface (its own router and error boundary,
    without Starlette's generic middleware on the hot path); everything else, and the lifespan, to the shell
    application that owns the shared state."""

    def __init__(self, shell: Starlette, oci: ASGIApp, metrics: Metrics, *, log_requests: bool) -> None:
        self.shell = shell
        self.state = shell.state
        self._oci = ObservabilityMiddleware(oci, metrics, log_requests=log_requests)
        self._other = ObservabilityMiddleware(shell, metrics, log_requests=log_requests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/v2/") or path == "/v2":
                scope["app"] = self.shell
                await self._oci(scope, receive, send)
                return
        await self._other(scope, receive, send)


def app_from_environment() -> DockyardApp:
    """Factory for server workers in separate processes: settings come serialized from the parent, and logging
    is set up again because a spawned process starts with none."""
    settings = load_serialized()
    configure_logging(settings.log_level)
    return create_app(settings)
