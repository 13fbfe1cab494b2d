"""Transparent mirror mode: Dockyard as the ``registry-mirrors`` / ``[[registry.mirror]]`` endpoint for docker.io.

Clients configured with a mirror ask it for docker.io's names as they are: ``library/alpine``,
``grafana/grafana`` — without the proxy namespace's prefix. With ``mirror_namespace`` set, a pull of ``<name>``
is served from ``<mirror_namespace>/<name>`` unless the name is local. The rule, decided on each pull:

1. a repository of that name stored here is local (it wins, whatever the namespace);
2. otherwise a name whose namespace is a local account's is local (a 404 stays a 404: a local user or
   organization never has docker.io's repository of the same name served in its place) — except ``library``,
   the namespace of Docker Hub's official images, whose repositories not stored here are mirrored;
3. everything else is mirrored.

Pushes, deletes and uploads are never redirected. Answers are cached per name for ``CACHE_SECONDS``.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from dockyard.core.names import LIBRARY, namespace_of
from dockyard.db.engine import Database
from dockyard.models import Account, Repository

CACHE_SECONDS = 2.0
_CACHE_LIMIT = 10_000


class MirrorRouter:
    def __init__(self, db: Database, namespace: str) -> None:
        self.db = db
        self.namespace = namespace
        self._answers: dict[str, tuple[float, str]] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.namespace)

    async def route(self, name: str) -> str:
        """The repository that serves a pull of ``name``: itself, or ``<mirror_namespace>/<name>``."""
        if not self.namespace or namespace_of(name) == self.namespace:
            return name
        now = time.monotonic()
        cached = self._answers.get(name)
        if cached is not None and cached[0] > now:
            return cached[1]
        answer = await self._decide(name)
        if len(self._answers) >= _CACHE_LIMIT:
            self._answers.clear()
        self._answers[name] = (now + CACHE_SECONDS, answer)
        return answer

    async def _decide(self, name: str) -> str:
        namespace = namespace_of(name)
        async with self.db.read() as conn:
            if (await conn.execute(select(Repository.id).where(Repository.name == name))).first() is not None:
                return name
            if namespace != LIBRARY:
                owner = (await conn.execute(select(Account.id).where(Account.name == namespace))).first()
                if owner is not None:
                    return name
        return f"{self.namespace}/{name}"
