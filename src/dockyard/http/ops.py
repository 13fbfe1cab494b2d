"""Operational endpoints: ``/healthz`` (process alive), ``/readyz`` (DB and storage reachable), ``/metrics``."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.registry.services import Registry

log = logging.getLogger("dockyard.ops")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    reg: Registry = request.app.state.registry
    problems: dict[str, str] = {}
    for component, check in (("database", reg.ctx.db.check), ("storage", reg.ctx.store.check)):
        try:
            await asyncio.wait_for(check(), timeout=5)
        except Exception as exc:
            log.warning("readiness check failed for %s: %s", component, exc)
            problems[component] = type(exc).__name__
    if problems:
        return JSONResponse({"status": "unavailable", "failing": problems}, status_code=503)
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.exposition_registry()), media_type=CONTENT_TYPE_LATEST)


ROUTES = [
    Route("/healthz", healthz, methods=["GET"], name="ops.healthz"),
    Route("/readyz", readyz, methods=["GET"], name="ops.readyz"),
    Route("/metrics", metrics, methods=["GET"], name="ops.metrics"),
]
