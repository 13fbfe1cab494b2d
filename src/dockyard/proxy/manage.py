"""Proxy settings: which namespace caches which upstream registry, with what credentials and tag TTL.

Site administrators (and the operator's CLI) manage them: an upstream URL makes the server send requests
wherever it points, and its credentials are the upstream's, so nobody else may set or read them. The password
is sealed with the server secret (``auth.secrets.SecretBox``, as webhook secrets are) and never shown again.
``ProxyDirectory`` is each process's view of the settings, read again after ``CACHE_SECONDS``.
"""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, delete, insert, select, update

from dockyard.accounts.common import require_superuser
from dockyard.auth.secrets import SecretBox
from dockyard.authz.principal import Principal
from dockyard.core.urls import split_url
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Account, Proxy, ProxyTagCheck
from dockyard.models.base import utcnow

CACHE_SECONDS = 2.0
_ROWS = select(Proxy.__table__)
DEFAULT_TAG_TTL = 300
DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
DOCKER_HUB_URL = "https://registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class Upstream:
    """One proxy's settings as the cache uses them (the password opened)."""

    namespace: str
    url: str
    username: str | None
    password: str | None
    tag_ttl_seconds: int

    @property
    def is_docker_hub(self) -> bool:
        return (urlsplit(self.url).hostname or "") in DOCKER_HUB_HOSTS

    def repository(self, name: str) -> str:
        """The upstream repository of local ``<namespace>/<path>``: ``<path>``, with ``library/`` in front of a
        one-component path on Docker Hub (its official images)."""
        path = name.split("/", 1)[1]
        if self.is_docker_hub and "/" not in path:
            return f"library/{path}"
        return path


@dataclass(frozen=True, slots=True)
class ProxyView:
    """A proxy as listed (never its password)."""

    namespace: str
    upstream_url: str
    username: str | None
    has_password: bool
    tag_ttl_seconds: int
    created_by: str
    created_at: datetime


def normalize_url(url: str) -> str:
    """``https://host[:port][/prefix]`` without a trailing slash; Docker Hub's names mean its registry API."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    parts = split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise Invalid("request", "the upstream must be an http(s) URL without query or fragment", {"url": url[:300]})
    if parts.username or parts.password:
        raise Invalid("request", "give upstream credentials with username/password, not in the URL")
    if parts.hostname in DOCKER_HUB_HOSTS:
        return DOCKER_HUB_URL
    return url


def _view(row: Row[Any]) -> ProxyView:
    return ProxyView(
        row.namespace,
        row.upstream_url,
        row.username,
        row.password is not None,
        row.tag_ttl_seconds,
        row.created_by,
        row.created_at,
    )


class ProxyService:
    """Add, list, change and remove proxies (site administrators only). Raises Denied, NotFound (no such namespace
    or proxy), Conflict (already a proxy, or the namespace holds repositories) and Invalid."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    async def add(
        self,
        actor: Principal,
        namespace: str,
        upstream_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tag_ttl_seconds: int = DEFAULT_TAG_TTL,
        source_ip: str = "",
    ) -> ProxyView:
        require_superuser(actor, "configure proxies")
        url = normalize_url(upstream_url)
        if (password is None) != (username is None):
            raise Invalid("request", "give both username and password, or neither")
        if not 0 <= tag_ttl_seconds <= 365 * 86400:
            raise Invalid("request", "tag_ttl_seconds must be between 0 and a year")
        now = utcnow()
        async with self.db.write() as conn:
            if (await conn.execute(select(Account.id).where(Account.name == namespace))).first() is None:
                raise NotFound("account", "no such namespace; create the organization first", {"namespace": namespace})
            if (await conn.execute(select(Proxy.namespace).where(Proxy.namespace == namespace))).first() is not None:
                raise Conflict("request", "this namespace is a proxy already", {"namespace": namespace})
            row = {
                "namespace": namespace,
                "upstream_url": url,
                "username": username,
                "password": self.box.seal(password.encode()) if password is not None else None,
                "tag_ttl_seconds": tag_ttl_seconds,
                "created_by": actor.audit_name,
                "created_at": now,
                "updated_at": now,
            }
            await conn.execute(insert(Proxy).values(row))
            await record_audit(
                conn,
                namespace,
                "proxy.create",
                actor=actor.audit_name,
                target=namespace,
                source_ip=source_ip,
                data={"upstream": url, "username": username, "tag_ttl_seconds": tag_ttl_seconds},
            )
            return _view((await conn.execute(_ROWS.where(Proxy.namespace == namespace))).one())

    async def update(
        self,
        actor: Principal,
        namespace: str,
        upstream_url: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        clear_credentials: bool = False,
        tag_ttl_seconds: int | None = None,
        source_ip: str = "",
    ) -> ProxyView:
        """Change a proxy's upstream and tag TTL (None: unchanged) and its credentials: a username and a password
        replace them; a username alone renames the stored ones (their password kept); neither keeps them as they
        are; ``clear_credentials`` drops them. A changed upstream forgets when cached tags were last checked, so each
        is checked against the new upstream at its next pull."""
        require_superuser(actor, "configure proxies")
        url = normalize_url(upstream_url) if upstream_url is not None else None
        if password is not None and username is None:
            raise Invalid("request", "a password needs its username")
        if clear_credentials and (username is not None or password is not None):
            raise Invalid("request", "give new credentials or clear them, not both")
        if tag_ttl_seconds is not None and not 0 <= tag_ttl_seconds <= 365 * 86400:
            raise Invalid("request", "tag_ttl_seconds must be between 0 and a year")
        async with self.db.write() as conn:
            row = (await conn.execute(_ROWS.where(Proxy.namespace == namespace))).first()
            if row is None:
                raise NotFound("account", "this namespace is not a proxy", {"namespace": namespace})
            url = url or row.upstream_url
            ttl = row.tag_ttl_seconds if tag_ttl_seconds is None else tag_ttl_seconds
            values: dict[str, Any] = {"upstream_url": url, "tag_ttl_seconds": ttl, "updated_at": utcnow()}
            if clear_credentials:
                values.update(username=None, password=None)
            elif password is not None:
                values.update(username=username, password=self.box.seal(password.encode()))
            elif username is not None:
                if row.password is None:
                    raise Invalid("request", "give both username and password, or neither")
                values["username"] = username
            await conn.execute(update(Proxy).where(Proxy.namespace == namespace).values(values))
            if url != row.upstream_url:
                cached_tags = ProxyTagCheck.repository.startswith(f"{namespace}/", autoescape=True)
                await conn.execute(delete(ProxyTagCheck).where(cached_tags))
            await record_audit(
                conn,
                namespace,
                "proxy.update",
                actor=actor.audit_name,
                target=namespace,
                source_ip=source_ip,
                data={
                    "upstream": url,
                    "username": values.get("username", row.username),
                    "credentials_changed": clear_credentials or password is not None,
                    "tag_ttl_seconds": ttl,
                },
            )
            return _view((await conn.execute(_ROWS.where(Proxy.namespace == namespace))).one())

    async def list(self, actor: Principal) -> builtins.list[ProxyView]:
        require_superuser(actor, "list proxies")
        async with self.db.read() as conn:
            rows = (await conn.execute(_ROWS.order_by(Proxy.namespace))).all()
        return [_view(row) for row in rows]

    async def remove(self, actor: Principal, namespace: str, *, source_ip: str = "") -> None:
        """Stop proxying; what the namespace cached stays as ordinary repositories of it."""
        require_superuser(actor, "configure proxies")
        async with self.db.write() as conn:
            result = await conn.execute(delete(Proxy).where(Proxy.namespace == namespace))
            if result.rowcount == 0:
                raise NotFound("account", "this namespace is not a proxy", {"namespace": namespace})
            cached_tags = ProxyTagCheck.repository.startswith(f"{namespace}/", autoescape=True)
            await conn.execute(delete(ProxyTagCheck).where(cached_tags))
            await record_audit(
                conn, namespace, "proxy.delete", actor=actor.audit_name, target=namespace, source_ip=source_ip
            )


class ProxyDirectory:
    """This process's view of the proxies, with their passwords opened; read again after ``CACHE_SECONDS``."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box
        self._loaded = 0.0
        self._by_namespace: dict[str, Upstream] = {}

    async def get(self, namespace: str) -> Upstream | None:
        if self._loaded + CACHE_SECONDS < time.monotonic():
            async with self.db.read() as conn:
                rows = (await conn.execute(_ROWS)).all()
            self._by_namespace = {
                row.namespace: Upstream(
                    row.namespace,
                    row.upstream_url,
                    row.username,
                    self.box.open(row.password).decode() if row.password is not None else None,
                    row.tag_ttl_seconds,
                )
                for row in rows
            }
            self._loaded = time.monotonic()
        return self._by_namespace.get(namespace)

    def forget(self) -> None:
        self._loaded = 0.0
