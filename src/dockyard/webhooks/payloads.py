"""Payload builders: one ``EventView`` → the exact bytes sent and their content type, for each payload format.

Formats (the ``payload_format`` of a webhook):

- ``dockerhub``: Docker Hub's push payload, field for field (``callback_url``, ``push_data``, ``repository``).
  Docker Hub only ever sends ``push``; for any other event the same envelope is sent with one extra top-level
  field, ``"event": "<name>"``, and ``push_data`` describing the event (``pushed_at`` = when it happened,
  ``pusher`` = who did it, ``tag`` = the tag concerned or ""). A ``push`` payload never has the ``event`` field, so
  it is byte-for-byte the Hub shape. Receivers written for Docker Hub treat every call as a push, so a Hub-format
  webhook should subscribe to ``push`` only.
- ``cloudevents``: CloudEvents 1.0, structured JSON mode; ``data`` is the ``dockyard`` object.
- ``dockyard``: everything Dockyard knows about the event.
- ``distribution``: the reference registry's notification envelope (``{"events": [...]}``), for tools written for
  it. Only events that registry has (push, pull, deletes) can be sent in it (``supports``).

Which format carries which event is the event table's (``dockyard.webhooks.event_table``).

Bodies are compact JSON with sorted keys, so the same event always gives the same bytes (and signature).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from dockyard.webhooks import events as ev
from dockyard.webhooks.event_table import PAYLOAD_FORMAT_TABLE, format_supports
from dockyard.webhooks.events import EventView

FORMATS: tuple[str, ...] = tuple(f.name for f in PAYLOAD_FORMAT_TABLE)  # the event table's formats, in order

JSON = "application/json"
CLOUDEVENTS_JSON = "application/cloudevents+json"
DISTRIBUTION_EVENTS = "application/vnd.docker.distribution.events.v2+json"
CLOUDEVENTS_TYPE_PREFIX = "io.dockyard."

# distribution's actions: push, pull, mount, delete. It has no repository creation, builds or policies.
_DISTRIBUTION_ACTIONS: Mapping[str, str] = {
    ev.PUSH: "push",
    ev.PULL: "pull",
    ev.TAG_DELETED: "delete",
    ev.MANIFEST_DELETED: "delete",
    ev.REPOSITORY_DELETED: "delete",
}


class UnsupportedEvent(ValueError):
    """The payload format cannot express this event (e.g. ``repository_created`` as a distribution notification).
    Callers skip the delivery; the API refuses such a subscription up front with ``supports``."""


@dataclass(frozen=True, slots=True)
class Payload:
    body: bytes
    content_type: str


def supports(payload_format: str, event: str) -> bool:
    """Whether ``payload_format`` can carry ``event``."""
    return format_supports(payload_format, event)


def build_payload(
    view: EventView, payload_format: str, *, callback_url: str | None = None, instance_id: str = ""
) -> Payload:
    """The body and content type for ``view`` in ``payload_format``.

    ``callback_url`` is the delivery's callback URL (Docker Hub chains; "" in the Hub format when there is none).
    ``instance_id`` identifies this server process in distribution's ``source.instanceID``. Raises ValueError for
    an unknown format and ``UnsupportedEvent`` when the format cannot carry the event.
    """
    if payload_format == "dockerhub":
        return Payload(dumps(dockerhub_object(view, callback_url)), JSON)
    if payload_format == "cloudevents":
        return Payload(dumps(cloudevent_object(view, callback_url)), CLOUDEVENTS_JSON)
    if payload_format == "dockyard":
        return Payload(dumps(dockyard_object(view, callback_url)), JSON)
    if payload_format == "distribution":
        return Payload(dumps({"events": [distribution_event(view, instance_id)]}), DISTRIBUTION_EVENTS)
    raise ValueError(f"unknown payload format {payload_format!r}; expected one of {', '.join(FORMATS)}")


def dumps(value: Any) -> bytes:
    """Compact JSON, keys sorted, ASCII only: deterministic bytes."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("ascii")


def rfc3339(moment: datetime) -> str:
    """``2024-05-01T12:00:00.123456Z`` (fraction only when there is one)."""
    return ev.as_utc(moment).isoformat().replace("+00:00", "Z")


def unix_seconds(moment: datetime) -> int:
    return int(ev.as_utc(moment).timestamp())


def dockerhub_object(view: EventView, callback_url: str | None = None) -> dict[str, Any]:
    """Docker Hub's webhook payload. ``dockerfile`` is "" and ``is_trusted`` false, except for the events of an
    automated build (``details.build``): then the rule's Dockerfile path and true. ``comment_count`` is 0 (no
    comments). Epoch values are integers."""
    info = view.info
    build = view.details.get("build")
    dockerfile = str(build.get("dockerfile", "")) if isinstance(build, dict) else ""
    created = info.date_created or view.occurred_at
    body: dict[str, Any] = {
        "callback_url": callback_url or "",
        "push_data": {
            "images": [],
            "pushed_at": unix_seconds(view.occurred_at),
            "pusher": view.actor or "",
            "tag": view.tag or "",
        },
        "repository": {
            "comment_count": 0,
            "date_created": unix_seconds(created),
            "description": info.description,
            "dockerfile": dockerfile,
            "full_description": info.full_description,
            "is_official": view.is_official,
            "is_private": info.is_private,
            "is_trusted": isinstance(build, dict),
            "name": view.name,
            "namespace": view.namespace,
            "owner": info.owner or view.namespace,
            "repo_name": view.full_name,
            "repo_url": view.repo_url,
            "star_count": info.star_count,
            "status": "Active",
        },
    }
    if view.event != ev.PUSH:
        body["event"] = view.event
    return body


def dockyard_object(view: EventView, callback_url: str | None = None) -> dict[str, Any]:
    """The Dockyard format: every field, null when unknown (``size``, ``digest``…), lists empty when none."""
    return {
        "id": view.event_id,
        "event": view.event,
        "occurred_at": rfc3339(view.occurred_at),
        "actor": view.actor,
        "repository": {
            "name": view.name,
            "namespace": view.namespace,
            "full_name": view.repository,
            "is_private": view.info.is_private,
            "url": view.repo_url,
        },
        "tag": view.tag,
        "tags": list(view.tags),
        "digest": view.digest,
        "media_type": view.media_type,
        "size": view.size,
        "platforms": [p.to_json() for p in view.platforms],
        "callback_url": callback_url,
        "details": dict(view.details),
    }


def cloudevent_object(view: EventView, callback_url: str | None = None) -> dict[str, Any]:
    """A CloudEvents 1.0 event in structured mode. ``source`` is the repository's URI reference
    (``<base_url>/<registry name>``), ``subject`` the tag, else the digest (absent when neither: optional
    attributes are omitted rather than empty)."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": view.event_id,
        "source": f"{view.base_url}/{view.repository}",
        "type": f"{CLOUDEVENTS_TYPE_PREFIX}{view.event}",
        "time": rfc3339(view.occurred_at),
        "datacontenttype": JSON,
        "data": dockyard_object(view, callback_url),
    }
    subject = view.tag or view.digest
    if subject:
        event["subject"] = subject
    return event


def distribution_event(view: EventView, instance_id: str = "") -> dict[str, Any]:
    """One event of distribution's envelope (``notifications.Event``), with its ``omitempty`` rules: empty
    fields are left out, except ``request.id``, ``request.method`` and ``request.useragent`` which distribution
    always writes. Deletes carry only the repository and the digest or tag, as distribution's do."""
    action = _DISTRIBUTION_ACTIONS.get(view.event)
    if action is None:
        raise UnsupportedEvent(f"the distribution format has no {view.event!r} event")
    target: dict[str, Any] = {"repository": view.repository}
    if view.event in (ev.PUSH, ev.PULL):
        _put(target, "mediaType", view.media_type)
        _put(target, "digest", view.digest)
        if view.size:
            target["size"] = view.size
            target["length"] = view.size
        _put(target, "url", view.manifest_url)
        _put(target, "tag", view.tag)
    elif view.event == ev.TAG_DELETED:
        _put(target, "tag", view.tag)
    elif view.event == ev.MANIFEST_DELETED:
        _put(target, "digest", view.digest)
    request = view.request
    request_record: dict[str, Any] = {
        "id": request.id if request else "",
        "method": request.method if request else "",
        "useragent": request.useragent if request else "",
    }
    if request:
        _put(request_record, "addr", request.addr)
        _put(request_record, "host", request.host)
    actor: dict[str, Any] = {}
    _put(actor, "name", view.actor)
    source: dict[str, Any] = {}
    _put(source, "addr", urlsplit(view.base_url).netloc)
    _put(source, "instanceID", instance_id)
    return {
        "id": view.event_id,
        "timestamp": rfc3339(view.occurred_at),
        "action": action,
        "target": target,
        "request": request_record,
        "actor": actor,
        "source": source,
    }


def _put(into: dict[str, Any], key: str, value: str | None) -> None:
    if value:
        into[key] = value
