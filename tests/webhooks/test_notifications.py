"""Distribution-compatible notification endpoints from the settings, and opt-in aggregated ``pull`` events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.checks import wait_for
from tests.support.oci import push_image, unique_name
from tests.support.webhook_receiver import WebhookReceiver
from tests.webhooks.conftest import Hooks, admin_client, make_server

pytestmark = pytest.mark.clients


def mine(receiver: WebhookReceiver, path: str, repo: str) -> list[dict[str, Any]]:
    out = []
    for request in receiver.requests_to(path):
        body = json.loads(request.body)
        for event in body.get("events", [body]):
            target = event.get("target", {}).get("repository") or event.get("repository", {}).get("full_name")
            if target == repo:
                out.append({"event": event, "headers": request.headers})
    return out


def test_notification_endpoints_and_pull_events(tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        endpoints = [
            {
                "name": "reg",
                "url": receiver.url("/notify"),
                "headers": {"Authorization": "Bearer notify-token"},
                "events": ["push", "pull", "tag_deleted"],
            }
        ]
        server = make_server(
            tmp_path,
            DOCKYARD_NOTIFICATIONS_ENDPOINTS=json.dumps(endpoints),
            DOCKYARD_PULL_EVENTS="true",
            DOCKYARD_PULL_STATS_FLUSH_SECONDS="0.5",
        )
        try:
            hooks = Hooks(server)
            hooks.create("admin", receiver.url("/pulls"), name="pulls", events=["pull"], payload_format="dockyard")
            repo = unique_name("admin")
            with admin_client(server) as client:
                image = push_image(client, repo, "v1")
                for _ in range(3):
                    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
                assert client.head(f"/v2/{repo}/manifests/v1").status_code == 200  # HEAD is not a pull
            # Aggregated per flush window (0.5 s here) and per server process: three pulls arrive as one event
            # with count 3, or — on a slow machine — as several whose counts add up to 3.
            pulls = wait_for(
                lambda: (
                    (found := mine(receiver, "/pulls", repo))
                    and sum(p["event"]["details"]["count"] for p in found) >= 3
                    and found
                ),
                timeout=30,
            )
            assert sum(p["event"]["details"]["count"] for p in pulls) == 3
            for pull in (p["event"] for p in pulls):
                assert pull["event"] == "pull"
                assert pull["tag"] == "v1"

            with admin_client(server) as client:
                assert client.delete(f"/v2/{repo}/manifests/v1").status_code == 202
            notes = wait_for(
                lambda: [n for n in mine(receiver, "/notify", repo) if n["event"]["action"] == "delete"], timeout=30
            )
            actions = wait_for(
                lambda: (
                    {n["event"]["action"] for n in mine(receiver, "/notify", repo)} >= {"push", "pull", "delete"}
                    and mine(receiver, "/notify", repo)
                ),
                timeout=30,
            )
            request = receiver.requests_to("/notify")[0]
            assert request.headers["content-type"] == "application/vnd.docker.distribution.events.v2+json"
            assert request.headers["authorization"] == "Bearer notify-token"
            pushed = next(n["event"] for n in actions if n["event"]["action"] == "push")
            assert pushed["target"]["repository"] == repo
            assert pushed["target"]["digest"] == image.digest
            assert pushed["target"]["tag"] == "v1"
            assert pushed["target"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
            assert pushed["actor"]["name"] == "admin"
            assert notes[0]["event"]["target"]["tag"] == "v1"
            # The endpoint is the settings': it is not managed (nor seen) through the API.
            listed = hooks.api.get("/api/v2/namespaces/admin/webhooks").json()["results"]
            assert all(not hook["name"].startswith("notifications:") for hook in listed)
            hooks.hub.close()
        finally:
            server.stop()
