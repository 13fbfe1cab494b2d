"""Pull-through cache: the namespaces that proxy an upstream registry, when each cached tag was last checked
upstream, and the leases that make one replica fetch an uncached blob while the others wait."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, UTCDateTime, ascii_string, utcnow


class Proxy(Base):
    """A namespace whose repositories are a cache of ``upstream_url`` (``<ns>/<path>`` ↔ upstream ``<path>``)."""

    __tablename__ = "proxies"

    namespace: Mapped[str] = mapped_column(ascii_string(255), primary_key=True)
    upstream_url: Mapped[str] = mapped_column(String(2048))
    username: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed with the server secret
    tag_ttl_seconds: Mapped[int] = mapped_column(Integer, default=300)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProxyTagCheck(Base):
    """When a cached tag of a proxy repository was last confirmed (or fetched) upstream."""

    __tablename__ = "proxy_tag_checks"

    repository: Mapped[str] = mapped_column(ascii_string(255), primary_key=True)
    tag: Mapped[str] = mapped_column(ascii_string(128), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProxyFetch(Base):
    """A blob being fetched from upstream: the holder renews ``lease_until`` while it streams; others wait."""

    __tablename__ = "proxy_fetches"

    digest: Mapped[str] = mapped_column(String(140), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime())
