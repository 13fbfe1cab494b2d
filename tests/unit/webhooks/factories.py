"""Event views for payload tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dockyard.webhooks.events import EventView, Platform, RepositoryInfo, RequestInfo

DIGEST = "sha256:" + "ab" * 32
WHEN = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)
CREATED = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_view(**overrides: Any) -> EventView:
    values: dict[str, Any] = {
        "event_id": "7d1c6f0e-6a3a-4b59-9d5e-1f0a2b3c4d5e",
        "event": "push",
        "occurred_at": WHEN,
        "repository": "acme/app",
        "namespace": "acme",
        "name": "app",
        "actor": "alice",
        "tag": "v1",
        "tags": ("v1", "latest"),
        "digest": DIGEST,
        "media_type": "application/vnd.oci.image.index.v1+json",
        "size": 1234,
        "platforms": (Platform("linux", "amd64"), Platform("linux", "arm64", "v8")),
        "info": RepositoryInfo(
            description="An app",
            full_description="# App\nLong text",
            is_private=False,
            star_count=3,
            date_created=CREATED,
            owner="acme",
        ),
        "base_url": "https://registry.example.com/",
        "request": RequestInfo(
            id="req-1", addr="10.0.0.9:51234", host="registry.example.com", method="PUT", useragent="skopeo/1.15"
        ),
    }
    values.update(overrides)
    return EventView(**values)
