"""The route class of every Hub API router: request bodies are parsed as JSON with their nesting bounded.

FastAPI parses a JSON body with ``Request.json()`` (``json.loads``); 100,000 nested ``[`` made that a
``RecursionError``, which FastAPI answers with a vague 400. Here the body goes through
``core.jsonparse.loads_limited``, whose ``JSONTooDeep`` is a ``JSONDecodeError``: FastAPI reports it as an invalid
body, a 422 problem like any other malformed JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.core.jsonparse import loads_limited


class LimitedJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_limited(await self.body())
        return self._json


class LimitedJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            return await handler(LimitedJSONRequest(request.scope, request.receive, request._send))

        return limited


def api_router(*, prefix: str, tags: list[str]) -> APIRouter:
    """A router for one Hub API resource (every router of the API is made here)."""
    return APIRouter(prefix=prefix, tags=list(tags), route_class=LimitedJSONRoute)


class AcceptTrailingSlash:
    """Docker Hub answers ``/v2/repositories/library/`` as ``/v2/repositories/library``; clients written against it
    send both. Instead of Starlette's 307 redirect (with an empty body, which some clients do not follow for a
    POST), the path is routed without its trailing slash. The path is changed in the request's scope in place,
    so the route that answered is still visible to the metrics around the API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope["path"] = path.rstrip("/") or "/"
                raw: bytes | None = scope.get("raw_path")
                if raw is not None:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)
