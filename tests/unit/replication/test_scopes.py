"""What a push rule replicates for an event (``replication.tasks.event_scopes``), cosign's signature tags, and the
mapping of names between a rule's two sides (``replication.runs.Names``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from dockyard.events.bus import OutboxEvent
from dockyard.events.outbox import MANIFEST_PUSHED, TAG_DELETED
from dockyard.replication.copier import signature_subject
from dockyard.replication.runs import Names
from dockyard.replication.tasks import event_scopes

DIGEST = "sha256:" + "ab" * 32


def _rule(**fields: Any) -> SimpleNamespace:
    return SimpleNamespace(**{"repository_filter": "app*", "tag_filter": "v*", "replicate_deletes": False, **fields})


def _event(kind: str, repository: str, tags: list[str], **payload: Any) -> OutboxEvent:
    row = SimpleNamespace(
        id=1,
        event_id="e",
        type=kind,
        occurred_at=datetime.now(UTC),
        actor="alice",
        repository=repository,
        tag=tags[0] if tags else None,
        digest=DIGEST,
        media_type=None,
        payload=json.dumps({"tags": tags, **payload}),
    )
    return OutboxEvent.from_row(row)  # type: ignore[arg-type]


def test_pushed_tags_through_the_filters() -> None:
    event = _event(MANIFEST_PUSHED, "acme/app", ["v1", "dev", "v2"])
    assert event_scopes(_rule(), event) == [{"repository": "acme/app", "tags": ["v1", "v2"]}]
    assert event_scopes(_rule(tag_filter="dev"), event) == [{"repository": "acme/app", "tags": ["dev"]}]
    assert event_scopes(_rule(repository_filter="tool*"), event) == []
    assert event_scopes(_rule(), _event(MANIFEST_PUSHED, "acme/app", ["latest"])) == []
    assert event_scopes(_rule(), _event(MANIFEST_PUSHED, "acme/app", [])) == []  # an index's child, by digest


def test_signatures_and_referrers_name_their_subject() -> None:
    signature = _event(MANIFEST_PUSHED, "acme/app", ["sha256-" + "ab" * 32 + ".sig"])
    assert event_scopes(_rule(), signature) == [{"repository": "acme/app", "subject": DIGEST}]
    referrer = _event(MANIFEST_PUSHED, "acme/app", [], subject=DIGEST)
    assert event_scopes(_rule(), referrer) == [{"repository": "acme/app", "subject": DIGEST}]


def test_deleted_tags_only_when_deletes_are_replicated() -> None:
    deleted = _event(TAG_DELETED, "acme/app", ["v1"])
    assert event_scopes(_rule(), deleted) == []
    assert event_scopes(_rule(replicate_deletes=True), deleted) == [{"repository": "acme/app", "delete_tags": ["v1"]}]
    assert event_scopes(_rule(replicate_deletes=True), _event(TAG_DELETED, "acme/app", ["dev"])) == []


@pytest.mark.parametrize(
    ("tag", "subject"),
    [
        ("sha256-" + "0f" * 32 + ".sig", "sha256:" + "0f" * 32),
        ("sha256-" + "0f" * 32 + ".att", "sha256:" + "0f" * 32),
        ("sha256-" + "0f" * 32, None),  # the referrers tag schema's index: not cosign's
        ("sha256-" + "0F" * 32 + ".sig", None),
        ("v1.sig", None),
    ],
)
def test_signature_subject(tag: str, subject: str | None) -> None:
    assert signature_subject(tag) == subject


def test_names_map_between_the_sides() -> None:
    push = Names("acme", "mirror", push=True)
    assert (push.source_prefix, push.destination("acme/team/app"), push.path("acme/team/app")) == (
        "acme/",
        "mirror/team/app",
        "team/app",
    )
    pull = Names("acme", "vendor", push=False)
    assert (pull.source_prefix, pull.destination("vendor/app")) == ("vendor/", "acme/app")
    same = Names("acme", "", push=False)
    assert (same.source_prefix, same.destination("acme/app")) == ("acme/", "acme/app")
