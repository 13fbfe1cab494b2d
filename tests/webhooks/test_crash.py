"""Nothing is lost: the server is SIGKILLed after pushes commit and before their deliveries, and once in the
middle of a delivery; after a restart every event arrives at least once, with the ``X-Dockyard-Delivery`` id
that lets the receiver drop duplicates. A receiver that is down for a while still gets everything."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.oci import push_image, unique_name
from tests.support.ports import free_port
from tests.support.server import DockyardServer
from tests.support.webhook_receiver import Reply, WebhookReceiver
from tests.webhooks.conftest import FAST, Hooks, admin_client

pytestmark = pytest.mark.clients

# No layer index or inventory on push: after a SIGKILL the dead process's claim on a layer's index stands until it
# is stale (60 s), the restarted server's index job waits for it, and its graceful stop then waits 30 s for that
# job — half a minute of nothing for tests about webhooks.
CRASH = {**FAST, "DOCKYARD_LAYER_INDEX_ON_PUSH": "false", "DOCKYARD_INVENTORY_ON_PUSH": "false"}


def tags_of(receiver: WebhookReceiver, path: str, repo: str) -> list[str]:
    bodies = [json.loads(r.body) for r in receiver.requests_to(path)]
    return [b["push_data"]["tag"] for b in bodies if b["repository"]["repo_name"] == repo]


def test_events_committed_before_a_crash_are_delivered_after_restart(tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        # No job runner: pushes commit their events, nothing is dispatched or sent yet.
        server = DockyardServer(tmp_path / "data", secure=True, env={**CRASH, "DOCKYARD_JOBS_ENABLED": "false"})
        server.start()
        repo = unique_name("admin")
        try:
            hooks = Hooks(server)
            hooks.create("admin", receiver.url("/crash"), name="crash")
            hooks.hub.close()
            with admin_client(server) as client:
                for tag in ("one", "two", "three"):
                    push_image(client, repo, tag)
            time.sleep(1.0)
            assert receiver.requests_to("/crash") == []
        finally:
            server.kill()
        server.env["DOCKYARD_JOBS_ENABLED"] = "true"
        server.start()
        try:
            receiver.wait_for(3, path="/crash", timeout=30)
            time.sleep(1.0)
            assert sorted(tags_of(receiver, "/crash", repo)) == ["one", "three", "two"]
            ids = [r.headers["x-dockyard-delivery"] for r in receiver.requests_to("/crash")]
            assert len(set(ids)) == 3
        finally:
            server.stop()


def test_a_crash_mid_delivery_redelivers_with_the_same_delivery_id(tmp_path: Path) -> None:
    with WebhookReceiver() as receiver:
        receiver.script("/mid", Reply(200, delay=8), Reply(200))
        server = DockyardServer(tmp_path / "data", secure=True, env=CRASH)
        server.start()
        repo = unique_name("admin")
        try:
            hooks = Hooks(server)
            created = hooks.create("admin", receiver.url("/mid"), name="mid")
            hooks.hub.close()
            with admin_client(server) as client:
                push_image(client, repo, "v1")
            receiver.wait_for(1, path="/mid", timeout=30)  # the first attempt is in flight…
        finally:
            server.kill()  # …when the server dies
        server.start()
        try:
            requests = receiver.wait_for(2, path="/mid", timeout=40)
            assert len(requests) >= 2
            assert len({r.headers["x-dockyard-delivery"] for r in requests}) == 1
            hooks = Hooks(server)
            done = hooks.wait_delivery(created["id"], lambda d: d["state"] == "delivered")
            assert done["id"] == requests[0].headers["x-dockyard-delivery"]
            hooks.hub.close()
        finally:
            server.stop()


def test_a_receiver_that_is_down_for_a_while_gets_everything(tmp_path: Path) -> None:
    server = DockyardServer(tmp_path / "data", secure=True, env=CRASH)
    server.start()
    port = free_port()
    repo = unique_name("admin")
    try:
        hooks = Hooks(server)
        created = hooks.create("admin", f"http://127.0.0.1:{port}/late", name="late")
        with admin_client(server) as client:
            for tag in ("a", "b"):
                push_image(client, repo, tag)
        # Nothing listens yet: attempts fail and are retried.
        hooks.wait_delivery(created["id"], lambda d: d["attempts"] >= 2, timeout=30)
        with WebhookReceiver(port=port) as receiver:
            receiver.wait_for(2, path="/late", timeout=40)
            time.sleep(1.0)
            # In order: the first push before the second (one webhook's deliveries never overtake each other).
            assert tags_of(receiver, "/late", repo) == ["a", "b"]
        hooks.hub.close()
    finally:
        server.stop()
