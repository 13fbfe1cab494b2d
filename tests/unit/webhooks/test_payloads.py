"""Payload shapes, field by field, against Docker Hub's webhook (shared/specs/docker-hub/wire-formats.md),
CloudEvents 1.0 (structured JSON) and distribution's notification envelope (notifications.md, event.go)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dockyard.webhooks import events as ev
from dockyard.webhooks.events import EventView, RepositoryInfo
from dockyard.webhooks.payloads import (
    FORMATS,
    UnsupportedEvent,
    build_payload,
    dumps,
    supports,
)
from tests.unit.webhooks.factories import CREATED, DIGEST, WHEN, make_view

HUB_REPOSITORY_FIELDS = {
    "comment_count",
    "date_created",
    "description",
    "dockerfile",
    "full_description",
    "is_official",
    "is_private",
    "is_trusted",
    "name",
    "namespace",
    "owner",
    "repo_name",
    "repo_url",
    "star_count",
    "status",
}


def decoded(view: EventView, fmt: str, **kwargs: Any) -> tuple[dict[str, Any], str]:
    payload = build_payload(view, fmt, **kwargs)
    return json.loads(payload.body), payload.content_type


def test_dockerhub_push_is_exactly_the_hub_shape() -> None:
    body, content_type = decoded(make_view(), "dockerhub", callback_url="https://reg.example/cb/tok")
    assert content_type == "application/json"
    assert set(body) == {"callback_url", "push_data", "repository"}
    assert body["callback_url"] == "https://reg.example/cb/tok"
    assert body["push_data"] == {"images": [], "pushed_at": int(WHEN.timestamp()), "pusher": "alice", "tag": "v1"}
    assert isinstance(body["push_data"]["pushed_at"], int)
    repo = body["repository"]
    assert set(repo) == HUB_REPOSITORY_FIELDS
    assert repo == {
        "comment_count": 0,
        "date_created": int(CREATED.timestamp()),
        "description": "An app",
        "dockerfile": "",
        "full_description": "# App\nLong text",
        "is_official": False,
        "is_private": False,
        "is_trusted": False,
        "name": "app",
        "namespace": "acme",
        "owner": "acme",
        "repo_name": "acme/app",
        "repo_url": "https://registry.example.com/r/acme/app",
        "star_count": 3,
        "status": "Active",
    }
    assert isinstance(repo["date_created"], int)


def test_dockerhub_library_repository_and_missing_values() -> None:
    view = make_view(
        repository="alpine", namespace="library", name="alpine", actor=None, tag=None, info=RepositoryInfo()
    )
    body, _ = decoded(view, "dockerhub")
    assert body["callback_url"] == ""
    assert body["push_data"]["pusher"] == ""
    assert body["push_data"]["tag"] == ""
    repo = body["repository"]
    assert repo["is_official"] is True
    assert repo["repo_name"] == "library/alpine"
    assert repo["repo_url"] == "https://registry.example.com/_/alpine"
    assert repo["owner"] == "library"
    assert repo["date_created"] == int(WHEN.timestamp())  # unknown creation: the event's time, still an int
    assert repo["is_private"] is True


@pytest.mark.parametrize("event", sorted(ev.WEBHOOK_EVENTS - {ev.PUSH}))
def test_dockerhub_other_events_add_an_event_field(event: str) -> None:
    body, _ = decoded(make_view(event=event), "dockerhub")
    assert body["event"] == event
    assert set(body) == {"callback_url", "push_data", "repository", "event"}
    assert set(body["repository"]) == HUB_REPOSITORY_FIELDS


def test_dockyard_format_has_everything() -> None:
    body, content_type = decoded(make_view(details={"k": 1}), "dockyard", callback_url="https://cb")
    assert content_type == "application/json"
    assert body == {
        "id": "7d1c6f0e-6a3a-4b59-9d5e-1f0a2b3c4d5e",
        "event": "push",
        "occurred_at": "2024-05-01T12:30:45.123456Z",
        "actor": "alice",
        "repository": {
            "name": "app",
            "namespace": "acme",
            "full_name": "acme/app",
            "is_private": False,
            "url": "https://registry.example.com/r/acme/app",
        },
        "tag": "v1",
        "tags": ["v1", "latest"],
        "digest": DIGEST,
        "media_type": "application/vnd.oci.image.index.v1+json",
        "size": 1234,
        "platforms": [
            {"os": "linux", "architecture": "amd64", "variant": None},
            {"os": "linux", "architecture": "arm64", "variant": "v8"},
        ],
        "callback_url": "https://cb",
        "details": {"k": 1},
    }


def test_dockyard_format_nulls_for_unknown_values() -> None:
    view = make_view(event="repository_created", tag=None, tags=(), digest=None, media_type=None, size=None)
    body, _ = decoded(view, "dockyard")
    assert body["tag"] is None
    assert body["digest"] is None
    assert body["size"] is None
    assert body["media_type"] is None
    assert body["tags"] == []
    assert body["callback_url"] is None


def test_cloudevents_structured_json() -> None:
    body, content_type = decoded(make_view(), "cloudevents", callback_url="https://cb")
    assert content_type == "application/cloudevents+json"
    assert set(body) == {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
    assert body["specversion"] == "1.0"
    assert body["id"] == "7d1c6f0e-6a3a-4b59-9d5e-1f0a2b3c4d5e"
    assert body["source"] == "https://registry.example.com/acme/app"
    assert body["type"] == "io.dockyard.push"
    assert body["subject"] == "v1"
    assert body["time"] == "2024-05-01T12:30:45.123456Z"
    assert datetime.fromisoformat(body["time"]) == WHEN  # RFC 3339
    assert body["datacontenttype"] == "application/json"
    assert body["data"] == json.loads(build_payload(make_view(), "dockyard", callback_url="https://cb").body)


def test_cloudevents_subject_falls_back_to_digest_then_is_omitted() -> None:
    body, _ = decoded(make_view(event="manifest_deleted", tag=None), "cloudevents")
    assert body["subject"] == DIGEST
    assert body["type"] == "io.dockyard.manifest_deleted"
    body, _ = decoded(make_view(event="repository_deleted", tag=None, digest=None), "cloudevents")
    assert "subject" not in body
    body, _ = decoded(make_view(base_url=""), "cloudevents")
    assert body["source"] == "/acme/app"  # a URI reference even without a configured base URL


def test_distribution_push_envelope() -> None:
    body, content_type = decoded(make_view(), "distribution", instance_id="inst-1")
    assert content_type == "application/vnd.docker.distribution.events.v2+json"
    assert set(body) == {"events"}
    (event,) = body["events"]
    assert set(event) == {"id", "timestamp", "action", "target", "request", "actor", "source"}
    assert event["id"] == "7d1c6f0e-6a3a-4b59-9d5e-1f0a2b3c4d5e"
    assert event["timestamp"] == "2024-05-01T12:30:45.123456Z"
    assert event["action"] == "push"
    assert event["target"] == {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": DIGEST,
        "size": 1234,
        "length": 1234,
        "repository": "acme/app",
        "url": f"https://registry.example.com/v2/acme/app/manifests/{DIGEST}",
        "tag": "v1",
    }
    assert event["request"] == {
        "id": "req-1",
        "addr": "10.0.0.9:51234",
        "host": "registry.example.com",
        "method": "PUT",
        "useragent": "skopeo/1.15",
    }
    assert event["actor"] == {"name": "alice"}
    assert event["source"] == {"addr": "registry.example.com", "instanceID": "inst-1"}


def test_distribution_omitempty_rules() -> None:
    body, _ = decoded(make_view(actor=None, request=None, base_url=""), "distribution")
    (event,) = body["events"]
    assert event["actor"] == {}
    assert event["source"] == {}
    assert event["request"] == {"id": "", "method": "", "useragent": ""}  # not omitempty in distribution


@pytest.mark.parametrize(
    ("event", "target"),
    [
        ("tag_deleted", {"repository": "acme/app", "tag": "v1"}),
        ("manifest_deleted", {"repository": "acme/app", "digest": DIGEST}),
        ("repository_deleted", {"repository": "acme/app"}),
    ],
)
def test_distribution_deletes_carry_a_subset(event: str, target: dict[str, str]) -> None:
    body, _ = decoded(make_view(event=event), "distribution")
    assert body["events"][0]["action"] == "delete"
    assert body["events"][0]["target"] == target


def test_distribution_pull() -> None:
    body, _ = decoded(make_view(event="pull"), "distribution")
    assert body["events"][0]["action"] == "pull"
    assert body["events"][0]["target"]["digest"] == DIGEST


@pytest.mark.parametrize("event", ["repository_created", "build_queued", "signature_added", "policy_violation"])
def test_distribution_cannot_carry_other_events(event: str) -> None:
    assert not supports("distribution", event)
    with pytest.raises(UnsupportedEvent):
        build_payload(make_view(event=event), "distribution")


def test_supports_and_unknown_format() -> None:
    for fmt in ("dockerhub", "cloudevents", "dockyard"):
        assert all(supports(fmt, event) for event in ev.WEBHOOK_EVENTS)
    assert not supports("xml", "push")
    assert not supports("dockyard", "nonsense")
    with pytest.raises(ValueError, match="unknown payload format"):
        build_payload(make_view(), "xml")


@pytest.mark.parametrize("fmt", FORMATS)
def test_bodies_are_compact_sorted_and_deterministic(fmt: str) -> None:
    view = make_view(event="push")
    first = build_payload(view, fmt, callback_url="https://cb").body
    assert first == build_payload(view, fmt, callback_url="https://cb").body
    assert first == dumps(json.loads(first))  # compact separators, sorted keys, ASCII


def test_non_ascii_is_escaped() -> None:
    view = make_view(info=RepositoryInfo(description="café ☕", date_created=CREATED))
    body = build_payload(view, "dockerhub").body
    assert body.isascii()
    assert json.loads(body)["repository"]["description"] == "café ☕"


def test_naive_time_is_utc() -> None:
    view = make_view(occurred_at=datetime(2024, 5, 1, 12, 0, 0))
    assert view.occurred_at == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    body, _ = decoded(view, "dockyard")
    assert body["occurred_at"] == "2024-05-01T12:00:00Z"
