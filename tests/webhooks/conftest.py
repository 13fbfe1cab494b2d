"""A secure server whose webhooks may reach loopback receivers, with fast retries, and helpers to manage webhooks
through the Hub API as the administrator."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import (  # noqa: F401 (fixtures shared with the client tests)
    ContainersEnv,
    Tool,
    busybox,
    image_layout,
    make_containers_env,
    multiarch_layout,
    seed,
)
from tests.support.checks import wait_for
from tests.support.hub import HubAdmin
from tests.support.server import DockyardServer
from tests.support.webhook_receiver import WebhookReceiver

FAST = {
    "DOCKYARD_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "DOCKYARD_JOBS_POLL_SECONDS": "0.2",
    "DOCKYARD_WEBHOOK_DISPATCH_POLL_SECONDS": "0.2",
    "DOCKYARD_JOBS_BACKOFF_BASE_SECONDS": "0.5",
    "DOCKYARD_JOBS_BACKOFF_CAP_SECONDS": "1",
    "DOCKYARD_WEBHOOK_TIMEOUT_SECONDS": "2",
    "DOCKYARD_JOBS_LEASE_SECONDS": "4",
}


# Events not yet handed to the webhook subscriber, and delivery attempts still to be made.
UNSENT = (
    "SELECT (SELECT COUNT(*) FROM events WHERE dispatched_at IS NULL)"
    " + (SELECT COUNT(*) FROM jobs WHERE kind = 'webhooks.deliver' AND state IN ('queued', 'running'))"
)


class Hooks:
    """The administrator's webhook calls."""

    def __init__(self, server: DockyardServer) -> None:
        self.server = server
        self.hub = HubAdmin(server)
        self.api = self.hub.client
        self.created: list[str] = []

    def create(self, namespace: str, url: str, **fields: Any) -> dict[str, Any]:
        body = {"name": fields.pop("name", "hook"), "url": url, **fields}
        response = self.api.post(f"/api/v2/namespaces/{namespace}/webhooks", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        self.created.append(created["id"])
        return created

    def delete_all(self) -> None:
        """Remove the webhooks a test made, so that they do not see the next test's pushes."""
        for uuid in self.created:
            self.api.delete(f"/api/v2/webhooks/{uuid}")
        self.created.clear()

    def get(self, uuid: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v2/webhooks/{uuid}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def deliveries(self, uuid: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v2/webhooks/{uuid}/deliveries", params={"page_size": 100})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def delivery(self, uuid: str, delivery: str) -> dict[str, Any]:
        response = self.api.get(f"/api/v2/webhooks/{uuid}/deliveries/{delivery}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def drained(self, timeout: float = 30.0) -> None:
        """Wait until every event so far is dispatched and no delivery attempt is queued or running (a retry
        included): after this, nothing more is sent for what has happened, so a count of requests is final."""
        wait_for(
            lambda: self.server.query_sql(UNSENT)[0][0] == 0,
            timeout=timeout,
            what="the outbox and the webhook delivery queue to drain",
        )

    def wait_delivery(self, uuid: str, done: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            last = self.deliveries(uuid)
            for item in last:
                if done(item):
                    return self.delivery(uuid, item["id"])
            time.sleep(0.2)
        raise AssertionError(f"no delivery reached the expected state: {last}")


def make_server(tmp_path: Path, **env: str) -> DockyardServer:
    server = DockyardServer(tmp_path / "data", secure=True, env={**FAST, **env})
    server.start()
    return server


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    server = make_server(tmp_path_factory.mktemp("webhooks"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hooks(hook_server: DockyardServer) -> Iterator[Hooks]:
    admin = Hooks(hook_server)
    yield admin
    admin.hub.close()


@pytest.fixture(autouse=True)
def _own_webhooks(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "hooks" in request.fixturenames:
        request.getfixturevalue("hooks").delete_all()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def skopeo(tmp_path: Path, hook_server: DockyardServer) -> Tool:
    env: ContainersEnv = make_containers_env(tmp_path / "containers", hook_server)
    return env.tool("skopeo")


def admin_client(server: DockyardServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, auth=("admin", server.ADMIN_PASSWORD))
