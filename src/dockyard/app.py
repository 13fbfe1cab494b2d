"""Composition root: ``create_app(settings)`` wires DB, storage and services and mounts every surface.

Nothing imports this module except the CLI and the tests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.db.engine import Database
from dockyard.http import ops
from dockyard.http.middleware import Metrics, ObservabilityMiddleware
from dockyard.http.oci.routes import oci_app
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.settings import Settings, load_serialized
from dockyard.storage.factory import open_blob_store

log = logging.getLogger("dockyard")


def create_app(settings: Settings) -> Starlette:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
        store = open_blob_store(settings.effective_storage_url, fsync=settings.fsync)
        app.state.registry = Registry.build(RegistryContext(db=db, store=store, settings=settings))
        try:
            yield
        finally:
            await store.close()
            await db.close()

    app = Starlette(routes=ops.ROUTES, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.settings = settings
    app.add_middleware(PrefixDispatch, prefix="/v2", target=oci_app())
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, log_requests=settings.access_log)
    return app


class PrefixDispatch:
    """Sends every request under ``prefix`` to ``target`` (a surface with its own router and error boundary)."""

    def __init__(self, app: ASGIApp, prefix: str, target: ASGIApp) -> None:
        self.app = app
        self.prefix = prefix
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            await self.target(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def app_from_environment() -> Starlette:
    """Factory for server workers in separate processes: settings come serialized from the parent."""
    return create_app(load_serialized())
