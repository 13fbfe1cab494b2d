"""Webhook event names, the outbox mapping and EventView construction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dockyard.core.names import namespace_of, short_name_of
from dockyard.events import outbox
from dockyard.webhooks import events as ev
from dockyard.webhooks.events import EventView, Platform, RepositoryInfo, from_outbox, sample_push

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_outbox_mapping() -> None:
    assert ev.webhook_event_for(outbox.MANIFEST_PUSHED) == "push"
    assert ev.webhook_event_for(outbox.TAG_DELETED) == "tag_deleted"
    assert ev.webhook_event_for(outbox.MANIFEST_DELETED) == "manifest_deleted"
    assert ev.webhook_event_for(outbox.REPOSITORY_CREATED) == "repository_created"
    assert ev.webhook_event_for(outbox.REPOSITORY_DELETED) == "repository_deleted"
    for unseen in (outbox.TAG_UPDATED, outbox.BLOB_UPLOADED, outbox.BLOB_MOUNTED, outbox.BLOB_DELETED):
        assert ev.webhook_event_for(unseen) is None
    assert set(ev.OUTBOX_TO_WEBHOOK) <= outbox.EVENT_TYPES


def test_event_name_sets() -> None:
    assert {
        "push",
        "pull",
        "tag_deleted",
        "manifest_deleted",
        "repository_created",
        "repository_deleted",
        "signature_added",
        "policy_violation",
        "scan_completed",
        "vulnerability_found",
        "quota_warning",
        "quota_exceeded",
        "build_queued",
        "build_started",
        "build_building",
        "build_pushing",
        "build_signing",
        "build_succeeded",
        "build_failed",
        "build_cancelled",
        "replication_completed",
        "replication_failed",
    } == ev.EMITTED_EVENTS
    assert frozenset() == ev.RESERVED_EVENTS  # builds made the last reserved events live
    assert ev.WEBHOOK_EVENTS == ev.EMITTED_EVENTS | ev.RESERVED_EVENTS
    assert ev.webhook_event_for(outbox.REPOSITORY_PULLED) == "pull"
    assert ev.webhook_event_for(outbox.POLICY_VIOLATED) == "policy_violation"
    assert ev.webhook_event_for(outbox.SCAN_COMPLETED) == "scan_completed"
    assert ev.webhook_event_for(outbox.VULNERABILITY_FOUND) == "vulnerability_found"
    assert ev.webhook_event_for(outbox.BUILD_SUCCEEDED) == "build_succeeded"


@pytest.mark.parametrize(
    ("repository", "namespace", "name"),
    [("acme/app", "acme", "app"), ("alpine", "library", "alpine"), ("acme/team/app", "acme", "team/app")],
)
def test_names(repository: str, namespace: str, name: str) -> None:
    assert namespace_of(repository) == namespace
    assert short_name_of(repository) == name


def test_from_outbox_push() -> None:
    view = from_outbox(
        event_id="e1",
        event_type=outbox.MANIFEST_PUSHED,
        occurred_at=WHEN,
        repository="acme/app",
        actor="alice",
        tag="v1",
        digest="sha256:" + "0" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        payload=json.dumps({"size": 321, "tags": ["v1", "latest"], "subject": None}),
        platforms=(Platform("linux", "amd64"),),
        base_url="https://r.example/",
    )
    assert view is not None
    assert view.event == "push"
    assert (view.namespace, view.name, view.full_name) == ("acme", "app", "acme/app")
    assert view.tags == ("v1", "latest")
    assert view.size == 321
    assert view.base_url == "https://r.example"
    assert view.info == RepositoryInfo(owner="acme")
    assert view.manifest_url == "https://r.example/v2/acme/app/manifests/sha256:" + "0" * 64


def test_from_outbox_tag_deleted_and_unseen() -> None:
    view = from_outbox(
        event_id="e2", event_type=outbox.TAG_DELETED, occurred_at=WHEN, repository="alpine", tag="old", payload="{}"
    )
    assert view is not None
    assert view.tags == ("old",)
    assert view.tag == "old"
    assert view.namespace == "library"
    assert from_outbox(event_id="e3", event_type=outbox.BLOB_UPLOADED, occurred_at=WHEN, repository="a/b") is None


def test_event_view_validation_and_normalisation() -> None:
    with pytest.raises(ValueError, match="unknown webhook event"):
        EventView(event_id="x", event="pushed", occurred_at=WHEN, repository="a/b", namespace="a", name="b")
    local = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    view = EventView(event_id="x", event="push", occurred_at=local, repository="a/b", namespace="a", name="b")
    assert view.occurred_at == WHEN
    assert view.occurred_at.tzinfo == UTC
    assert view.manifest_url is None


def test_sample_push() -> None:
    view = sample_push("acme/app", event_id="s1", base_url="https://r.example")
    assert view.event == "push"
    assert view.tag == "latest"
    assert view.details == {"sample": True}
    assert view.digest is not None
    assert view.digest.startswith("sha256:")
