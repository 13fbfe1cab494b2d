"""Webhooks end to end, with a real HTTP receiver on loopback: a skopeo push produces one delivery per webhook
in each payload format, signed; retries with backoff; 410, 400 and timeouts; callback chains."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from dockyard.webhooks.hmac import verify
from tests.clients.conftest import Tool, docker_ref
from tests.support.images import Layout
from tests.support.oci import push_image, unique_name
from tests.support.server import DockyardServer
from tests.support.webhook_receiver import Received, Reply, WebhookReceiver
from tests.webhooks.conftest import Hooks, admin_client, make_server

pytestmark = pytest.mark.clients


def push(skopeo: Tool, server: DockyardServer, layout: Layout, repo: str, tag: str) -> None:
    skopeo.run(
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"admin:{server.ADMIN_PASSWORD}",
        f"oci:{layout.path}:{layout.tag}",
        docker_ref(server, repo, tag),
    )


def only(hooks: Hooks, receiver: WebhookReceiver, path: str) -> Received:
    """The one request ``path`` received, once nothing more can be sent (a second delivery would be queued)."""
    hooks.drained()
    requests = receiver.requests_to(path)
    assert len(requests) == 1, [r.headers.get("x-dockyard-delivery") for r in requests]
    return requests[0]


def test_skopeo_push_delivers_each_format_signed(
    hook_server: DockyardServer, hooks: Hooks, receiver: WebhookReceiver, skopeo: Tool, image_layout: Layout
) -> None:
    repo = unique_name("admin")
    made = {
        fmt: hooks.create("admin", receiver.url(f"/{fmt}"), name=fmt, payload_format=fmt, events=["push"])
        for fmt in ("dockerhub", "cloudevents", "dockyard")
    }
    for created in made.values():
        assert created["secret"]
    push(skopeo, hook_server, image_layout, repo, "v1")
    for fmt in made:
        receiver.wait_for(1, path=f"/{fmt}", timeout=30)
    got = {fmt: only(hooks, receiver, f"/{fmt}") for fmt in made}

    for fmt, request in got.items():
        assert request.method == "POST"
        assert request.headers["x-dockyard-event"] == "push"
        assert len(request.headers["x-dockyard-delivery"]) == 36
        assert verify(made[fmt]["secret"], request.body, request.headers["x-dockyard-signature"])
        assert not verify("a-wrong-secret", request.body, request.headers["x-dockyard-signature"])

    hub = json.loads(got["dockerhub"].body)
    namespace, name = repo.split("/", 1)
    assert set(hub) == {"callback_url", "push_data", "repository"}
    assert hub["callback_url"].startswith(f"{hook_server.url}/api/v2/webhooks/callbacks/")
    assert hub["push_data"]["tag"] == "v1"
    assert hub["push_data"]["pusher"] == "admin"
    assert isinstance(hub["push_data"]["pushed_at"], int)
    assert hub["repository"]["repo_name"] == repo
    assert hub["repository"]["namespace"] == namespace
    assert hub["repository"]["name"] == name
    assert hub["repository"]["status"] == "Active"
    assert hub["repository"]["is_private"] is True

    cloud = json.loads(got["cloudevents"].body)
    assert got["cloudevents"].headers["content-type"] == "application/cloudevents+json"
    assert cloud["specversion"] == "1.0"
    assert cloud["type"] == "io.dockyard.push"
    assert cloud["subject"] == "v1"

    dockyard = json.loads(got["dockyard"].body)
    assert dockyard["digest"] == image_layout.top_digest
    assert dockyard["tag"] == "v1"
    assert dockyard["actor"] == "admin"
    assert {(p["os"], p["architecture"]) for p in dockyard["platforms"]} == {("linux", "amd64")}
    assert cloud["id"] == dockyard["id"] == hub_event_id(hooks, made["dockerhub"]["id"])


def hub_event_id(hooks: Hooks, webhook: str) -> str:
    (delivery,) = hooks.deliveries(webhook)[-1:]
    return str(delivery["event_id"])


def test_multi_arch_push_is_one_push_with_every_platform(
    hook_server: DockyardServer, hooks: Hooks, receiver: WebhookReceiver, skopeo: Tool, multiarch_layout: Layout
) -> None:
    repo = unique_name("admin")
    hooks.create("admin", receiver.url("/multi"), name="multi", payload_format="dockyard")
    push(skopeo, hook_server, multiarch_layout, repo, "multi")
    receiver.wait_for(1, path="/multi", timeout=30)
    body = json.loads(only(hooks, receiver, "/multi").body)
    assert body["digest"] == multiarch_layout.top_digest
    assert {(p["os"], p["architecture"]) for p in body["platforms"]} == {("linux", "amd64"), ("linux", "arm64")}


def test_retry_after_500_with_backoff_in_history(
    hook_server: DockyardServer, hooks: Hooks, receiver: WebhookReceiver
) -> None:
    repo = unique_name("admin")
    receiver.script("/flaky", Reply(500), Reply(200))
    created = hooks.create("admin", receiver.url("/flaky"), name="flaky")
    with admin_client(hook_server) as client:
        push_image(client, repo, "v1")
    done = hooks.wait_delivery(created["id"], lambda d: d["state"] == "delivered")
    requests = receiver.requests_to("/flaky")
    assert len(requests) == 2
    assert requests[0].headers["x-dockyard-delivery"] == requests[1].headers["x-dockyard-delivery"] == done["id"]
    first, second = done["history"]
    assert first["outcome"] == "retry"
    assert first["response"]["status"] == 500
    assert first["next_attempt_at"] is not None
    assert second["outcome"] == "delivered"
    assert second["response"]["status"] == 200
    assert second["started_at"] >= first["next_attempt_at"][:19]
    assert done["attempts"] == 2


def test_gone_deactivates_and_bad_request_is_not_retried(
    hook_server: DockyardServer, hooks: Hooks, receiver: WebhookReceiver
) -> None:
    receiver.script("/gone", Reply(410))
    receiver.script("/bad", Reply(400, body=b"no thanks"))
    gone = hooks.create("admin", receiver.url("/gone"), name="gone")
    bad = hooks.create("admin", receiver.url("/bad"), name="bad")
    with admin_client(hook_server) as client:
        push_image(client, unique_name("admin"), "v1")
    failed = hooks.wait_delivery(bad["id"], lambda d: d["state"] == "failed")
    assert failed["attempts"] == 1
    assert failed["history"][0]["response"]["body"] == "no thanks"
    hooks.wait_delivery(gone["id"], lambda d: d["state"] == "failed")
    state = hooks.get(gone["id"])
    assert state["active"] is False
    assert "410" in state["disabled_reason"]
    assert hooks.get(bad["id"])["active"] is True
    hooks.drained()  # a retry would be queued, and sent before this returns
    assert len(receiver.requests_to("/bad")) == 1
    assert len(receiver.requests_to("/gone")) == 1


def test_timeout_is_retried(hook_server: DockyardServer, hooks: Hooks, receiver: WebhookReceiver) -> None:
    receiver.script("/slow", Reply(200, delay=4), Reply(200))
    created = hooks.create("admin", receiver.url("/slow"), name="slow")
    with admin_client(hook_server) as client:
        push_image(client, unique_name("admin"), "v1")
    done = hooks.wait_delivery(created["id"], lambda d: d["state"] == "delivered", timeout=40)
    first = done["history"][0]
    assert first["outcome"] == "retry"
    assert "timeout" in (first["error"] or "").lower() or "timed out" in (first["error"] or "").lower()


def callback(url: str, state: str) -> httpx.Response:
    return httpx.post(
        url, json={"state": state, "description": "tests", "context": "ci", "target_url": "http://ci.test/1"}
    )


def test_callback_chain(hook_server: DockyardServer, hooks: Hooks, receiver: WebhookReceiver) -> None:
    repo = unique_name("admin")
    namespace = "admin"
    first = hooks.create(namespace, receiver.url("/first"), name="first")
    second = hooks.create(namespace, receiver.url("/second"), name="second", after=first["id"])
    assert second["after"] == first["id"]
    with admin_client(hook_server) as client:
        push_image(client, repo, "ok")
    (request,) = receiver.wait_for(1, path="/first", timeout=30)
    hooks.wait_delivery(second["id"], lambda d: d["state"] == "waiting")  # held for the first one's callback…
    hooks.drained()
    assert receiver.requests_to("/second") == []  # …and not sent
    url = json.loads(request.body)["callback_url"]
    assert callback(url, "success").status_code == 200
    assert callback(url, "success").status_code == 409  # once only
    receiver.wait_for(1, path="/second", timeout=30)
    record = hooks.wait_delivery(first["id"], lambda d: d["callback"] is not None)
    assert record["callback"] == {
        "state": "success",
        "description": "tests",
        "context": "ci",
        "target_url": "http://ci.test/1",
    }

    with admin_client(hook_server) as client:
        push_image(client, repo, "bad")
    requests = receiver.wait_for(2, path="/first", timeout=30)
    url = json.loads(requests[-1].body)["callback_url"]
    assert callback(url, "failure").status_code == 200
    stopped = hooks.wait_delivery(second["id"], lambda d: d["state"] == "chain_stopped")
    assert "failure" in stopped["last_error"]
    hooks.drained()
    assert len(receiver.requests_to("/second")) == 1
    assert (
        httpx.post(f"{hook_server.url}/api/v2/webhooks/callbacks/not-a-token", json={"state": "success"}).status_code
        == 404
    )


def test_tag_filter_and_event_filter(hook_server: DockyardServer, hooks: Hooks, receiver: WebhookReceiver) -> None:
    repo = unique_name("admin")
    hooks.create("admin", receiver.url("/releases"), name="releases", tag_filter="v*")
    hooks.create("admin", receiver.url("/deletes"), name="deletes", events=["tag_deleted"])
    with admin_client(hook_server) as client:
        push_image(client, repo, "latest")
        push_image(client, repo, "v2")
        assert client.delete(f"/v2/{repo}/manifests/latest").status_code == 202
    receiver.wait_for(1, path="/releases", timeout=30)
    receiver.wait_for(1, path="/deletes", timeout=30)
    hooks.drained()
    releases = [json.loads(r.body) for r in receiver.requests_to("/releases")]
    assert [body["push_data"]["tag"] for body in releases if body["repository"]["repo_name"] == repo] == ["v2"]
    deletes = [json.loads(r.body) for r in receiver.requests_to("/deletes")]
    mine = [body for body in deletes if body["repository"]["repo_name"] == repo]
    assert len(mine) == 1
    assert mine[0]["event"] == "tag_deleted"
    assert mine[0]["push_data"]["tag"] == "latest"


def test_a_webhook_that_keeps_failing_is_disabled_with_the_reason(tmp_path: Any) -> None:
    receiver = WebhookReceiver()
    receiver.start()
    receiver.script("/broken", Reply(400, body=b"nope"))
    server = make_server(
        tmp_path, DOCKYARD_WEBHOOK_DISABLE_AFTER_FAILURES="2", DOCKYARD_WEBHOOK_DISABLE_AFTER_SECONDS="60"
    )
    try:
        hooks = Hooks(server)
        created = hooks.create("admin", receiver.url("/broken"), name="broken")
        repo = unique_name("admin")
        with admin_client(server) as client:
            push_image(client, repo, "one")
        hooks.wait_delivery(created["id"], lambda d: d["state"] == "failed")
        assert hooks.get(created["id"])["active"] is True  # one failure, only just now: not yet
        # It has been failing for a while (pretend an hour) when the next delivery fails too.
        server.execute_sql(
            "UPDATE webhooks SET failing_since = :since WHERE uuid = :uuid",
            since=datetime.now(UTC) - timedelta(hours=1),
            uuid=created["id"],
        )
        with admin_client(server) as client:
            push_image(client, repo, "two")
        deadline = time.monotonic() + 30
        while hooks.get(created["id"])["active"] and time.monotonic() < deadline:
            time.sleep(0.2)
        state = hooks.get(created["id"])
        assert state["active"] is False
        assert "in a row" in state["disabled_reason"]
        assert "HTTP 400" in state["disabled_reason"]
        # Re-enabling forgets the failures.
        again = hooks.api.patch(f"/api/v2/webhooks/{created['id']}", json={"active": True}).json()
        assert again["active"] is True
        assert again["disabled_reason"] is None
        assert again["consecutive_failures"] == 0
        hooks.hub.close()
    finally:
        server.stop()
        receiver.stop()


def test_a_pushed_signature_is_a_signature_added_event(
    hook_server: DockyardServer, hooks: Hooks, receiver: WebhookReceiver
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.signing.test_trust_policy import sign

    repo = unique_name("admin")
    hooks.create("admin", receiver.url("/sigs"), name="sigs", events=["signature_added"], payload_format="dockyard")
    with admin_client(hook_server) as client:
        image = push_image(client, repo, "v1")
        tag = sign(client, repo, image.digest, ec.generate_private_key(ec.SECP256R1()))
    (request,) = receiver.wait_for(1, path="/sigs", timeout=30)
    body = json.loads(request.body)
    assert request.headers["x-dockyard-event"] == "signature_added"
    assert body["event"] == "signature_added"
    assert body["tag"] == tag
    hooks.drained()
    assert len(receiver.requests_to("/sigs")) == 1  # the image push itself is not a signature
