"""What a webhook's settings may be: name, URL, events, payload format, tag filter and extra auth header. Each
check returns the value to store or raises ``Invalid`` (subject ``request``) saying what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from dockyard.core.urls import split_url
from dockyard.errors import Invalid
from dockyard.webhooks.events import WEBHOOK_EVENTS
from dockyard.webhooks.snapshots import PAYLOAD_FORMATS


def validate_webhook_name(name: str) -> str:
    if not name or len(name) > 100 or not name.isprintable():
        raise Invalid("webhook", "name must be 1 to 100 printable characters")
    return name


def validate_url(url: str) -> str:
    parts = split_url(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2048:
        raise Invalid("webhook", "url must be an http(s) URL with a host, at most 2048 characters", {"url": url[:200]})
    if parts.username or parts.password:
        raise Invalid("webhook", "put credentials in auth_header, not in the URL")
    return url


def validate_events(events: Sequence[str] | None) -> list[str]:
    """The chosen events in order without repeats; none given means ``push``."""
    chosen = list(dict.fromkeys(events or ["push"]))
    unknown = [e for e in chosen if e not in WEBHOOK_EVENTS]
    if unknown or not chosen:
        raise Invalid("webhook", f"unknown events {unknown}; known: {sorted(WEBHOOK_EVENTS)}")
    return chosen


def validate_format(payload_format: str) -> str:
    if payload_format not in PAYLOAD_FORMATS:
        raise Invalid("webhook", f"payload_format must be one of {list(PAYLOAD_FORMATS)}")
    return payload_format


def validate_tag_filter(pattern: str | None) -> str | None:
    """A printable glob, or None (also for ``""``: no filter)."""
    if pattern is None or pattern == "":
        return None
    if len(pattern) > 255 or not pattern.isprintable():
        raise Invalid("webhook", "tag_filter must be a printable glob of at most 255 characters")
    fnmatchcase("probe", pattern)  # any string is a valid glob; this only proves it evaluates
    return pattern


def validate_auth_header(value: str | None) -> str | None:
    """One ``Name: value`` header line, normalised, or None (also for ``""``: no header). Headers the sender sets
    itself cannot be overridden."""
    if value is None or value == "":
        return None
    name, sep, content = value.partition(":")
    if not sep or not name.strip() or "\n" in value or "\r" in value or len(value) > 4096:
        raise Invalid("webhook", 'auth_header must be one "Name: value" header line')
    if name.strip().lower() in {"host", "content-type", "content-length"} or name.lower().startswith("x-dockyard-"):
        raise Invalid("webhook", f"auth_header may not set {name.strip()}")
    return f"{name.strip()}: {content.strip()}"
