"""When the cache asks its upstream again: digests never (content-addressed, they cannot change); a tag after the
proxy's ``tag_ttl_seconds`` since it was last confirmed (with a ``HEAD``, which Docker Hub does not count as a
pull). The confirmation times live in ``proxy_tag_checks`` so every replica sees them. And the warning a response
carries when the upstream could not be asked and the cached copy is served as it is."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from dockyard.db.engine import Database
from dockyard.db.statements import dialect_insert
from dockyard.models import ProxyTagCheck
from dockyard.models.base import utcnow

STALE_WARNING = '110 - "Response is Stale"'
"""RFC 7234's warning for a cached response that could not be revalidated (the upstream is down or limiting)."""


def is_fresh(checked_at: datetime | None, ttl_seconds: int, now: datetime | None = None) -> bool:
    if checked_at is None:
        return False
    return (now or utcnow()) - checked_at < timedelta(seconds=ttl_seconds)


class TagChecks:
    """When each cached tag was last confirmed upstream."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def checked_at(self, repository: str, tag: str) -> datetime | None:
        async with self.db.read() as conn:
            value: datetime | None = (
                await conn.execute(
                    select(ProxyTagCheck.checked_at).where(
                        ProxyTagCheck.repository == repository, ProxyTagCheck.tag == tag
                    )
                )
            ).scalar_one_or_none()
        return value

    async def confirm(self, repository: str, tag: str) -> None:
        now = utcnow()
        async with self.db.write() as conn:
            insert = dialect_insert(conn)
            statement = insert(ProxyTagCheck).values(repository=repository, tag=tag, checked_at=now)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=[ProxyTagCheck.repository, ProxyTagCheck.tag], set_={"checked_at": now}
                )
            )
