"""``LazyApp``: an ASGI application built on its first request, for a surface a server process may never serve
(the Hub API), so that its imports and set-up cost neither start-up time nor memory until then."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send


class LazyApp:
    """Calls the builder given to ``build_with`` on the first request and hands every request to what it built.
    The build is synchronous, so concurrent first requests on one event loop build once."""

    def __init__(self) -> None:
        self._builder: Callable[[], ASGIApp] | None = None
        self._app: ASGIApp | None = None

    def build_with(self, builder: Callable[[], ASGIApp]) -> None:
        """Set (or, when the server starts again, replace) the builder; the next request builds anew."""
        self._builder, self._app = builder, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            if self._builder is None:
                raise RuntimeError("LazyApp called before build_with (the lifespan has not run)")
            self._app = self._builder()
        await self._app(scope, receive, send)
