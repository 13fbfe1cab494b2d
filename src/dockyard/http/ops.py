"""Operational endpoints: ``/healthz`` (process alive), ``/readyz`` (DB and storage reachable), ``/metrics``
(behind ``metrics_token`` when set; not here at all when ``metrics_address`` gives it a listener of its own). The
job queue's gauges are read from the database when ``/metrics`` is scraped here; the ``metrics_address`` listener
(the supervisor's, without a database) does not measure the queue."""

from __future__ import annotations

import asyncio
import hmac
import logging

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from dockyard.http.metrics import Metrics
from dockyard.jobs.stats import queue_stats
from dockyard.registry.services import Registry
from dockyard.settings import Settings

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


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, credentials = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), token.encode())


METRICS_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrics"'}


async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if settings.metrics_address:
        return PlainTextResponse("Not Found", status_code=404)
    if settings.metrics_token and not bearer_matches(request.headers.get("authorization", ""), settings.metrics_token):
        return PlainTextResponse("Unauthorized", status_code=401, headers=METRICS_CHALLENGE)
    metrics: Metrics = request.app.state.metrics
    reg: Registry = request.app.state.registry
    try:
        stats = await asyncio.wait_for(queue_stats(reg.ctx.db), timeout=5)
    except Exception as exc:  # the rest of the metrics are still worth serving
        log.warning("job queue metrics: %s", exc)
    else:
        metrics.job_queue(stats.depth, stats.oldest_due_seconds)
    return Response(generate_latest(metrics.exposition_registry()), media_type=CONTENT_TYPE_LATEST)


ROUTES = [
    Route("/healthz", healthz, methods=["GET"], name="ops.healthz"),
    Route("/readyz", readyz, methods=["GET"], name="ops.readyz"),
    Route("/metrics", metrics, methods=["GET"], name="ops.metrics"),
]
