"""Which pushes start the per-image background work (layer index, inventory, scan): a newly stored image manifest,
not a re-tag of one the repository holds, nor an artifact, an index or another event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dockyard.events.bus import OutboxEvent
from dockyard.events.outbox import MANIFEST_PUSHED, TAG_UPDATED
from dockyard.repos.access import new_image_pushed

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def event(type_: str = MANIFEST_PUSHED, media_type: str = OCI_MANIFEST, **payload: Any) -> OutboxEvent:
    return OutboxEvent(
        id=1,
        event_id="e",
        type=type_,
        occurred_at=datetime.now(UTC),
        actor=None,
        repository="ns/repo",
        tag="v1",
        digest="sha256:" + "a" * 64,
        media_type=media_type,
        payload={"artifactType": OCI_CONFIG, **payload},
    )


def test_a_newly_stored_image_is_work() -> None:
    assert new_image_pushed(event(new=True)) == ("ns/repo", "sha256:" + "a" * 64)
    assert new_image_pushed(event()) is not None  # events written before the flag existed count as new


@pytest.mark.parametrize(
    "pushed",
    [
        event(new=False),  # a tag pushed for a manifest the repository holds
        event(media_type=OCI_INDEX, new=True),
        event(new=True, artifactType="application/vnd.dev.cosign.simplesigning.v1+json"),
        event(TAG_UPDATED, new=True),
    ],
)
def test_other_pushes_are_not(pushed: OutboxEvent) -> None:
    assert new_image_pushed(pushed) is None
