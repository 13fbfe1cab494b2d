"""The ``/v2`` side of the pull-through cache (``dockyard.proxy``): manifest and blob GETs of a proxy namespace's
repositories go through ``ProxyCache``, and in mirror mode (``MirrorPaths``) the pulls of docker.io names are
sent to the proxy namespace before routing — so the guard authorizes, and the handlers serve, the repository
that really answers."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.proxy.cache import ProxyCache
from dockyard.proxy.manage import Upstream
from dockyard.proxy.mirror import MirrorRouter
from dockyard.proxy.policy import STALE_WARNING

_PULL_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<rest>(?:manifests|blobs|referrers)/[^/]+|tags/list)$")

__all__ = ["STALE_WARNING", "MirrorPaths", "proxy_cache", "upstream_of"]


def proxy_cache(request: Request) -> ProxyCache | None:
    value: ProxyCache | None = getattr(request.app.state, "proxy", None)
    return value


async def upstream_of(request: Request, name: str) -> tuple[ProxyCache, Upstream] | None:
    """The cache and the proxy settings when ``name`` is a proxy namespace's repository, else None."""
    cache = proxy_cache(request)
    if cache is None:
        return None
    upstream = await cache.upstream_of(name)
    return None if upstream is None else (cache, upstream)


class MirrorPaths:
    """Rewrite ``GET``/``HEAD`` ``/v2/<name>/…`` to ``/v2/<mirror_namespace>/<name>/…`` when the mirror serves
    ``name`` (``dockyard.proxy.mirror`` has the rule). Uploads, pushes and deletes pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            app = scope.get("app")
            mirror: MirrorRouter | None = getattr(getattr(app, "state", None), "mirror", None)
            if mirror is not None and mirror.enabled:
                match = _PULL_PATH.match(scope["path"])
                if match is not None and len(match.group("name")) <= 255 and not match.group("name").startswith("_"):
                    name = match.group("name")
                    routed = await mirror.route(name)
                    if routed != name:
                        path = f"/v2/{routed}/{match.group('rest')}"
                        scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)
