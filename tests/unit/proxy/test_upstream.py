"""The upstream client over httpx's mock transport: Docker's token flow (401 Bearer challenge → token from the
realm with the proxy's Basic credentials → the request again, the token reused until it expires), Basic
challenges, and how failures are told apart (missing vs. down)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest

from dockyard.errors import Invalid
from dockyard.models.base import utcnow
from dockyard.proxy.manage import DOCKER_HUB_URL, Upstream, normalize_url
from dockyard.proxy.policy import is_fresh
from dockyard.proxy.upstream import UpstreamClient, UpstreamDown, UpstreamMissing

UP = Upstream("cache", "https://registry.test", "bob", "secret", 60)
MANIFEST = b'{"schemaVersion":2}'


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> UpstreamClient:
    client = UpstreamClient(5.0)
    client._http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return client


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_bearer_challenge_fetches_a_token_with_the_credentials_and_reuses_it() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.path == "/token":
            assert request.headers["authorization"] == basic("bob", "secret")
            assert request.url.params["scope"] == "repository:team/app:pull"
            assert request.url.params["service"] == "registry.test"
            return httpx.Response(200, json={"token": "T1", "expires_in": 300})
        if request.headers.get("authorization") != "Bearer T1":
            challenge = (
                'Bearer realm="https://auth.test/token",service="registry.test",scope="repository:team/app:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return httpx.Response(
            200, content=MANIFEST, headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        )

    client = client_for(handler)
    first = await client.manifest(UP, "team/app", "v1")
    assert first.content == MANIFEST
    assert first.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert [url for url, _ in seen] == [
        "https://registry.test/v2/team/app/manifests/v1",
        "https://auth.test/token?scope=repository%3Ateam%2Fapp%3Apull&service=registry.test",
        "https://registry.test/v2/team/app/manifests/v1",
    ]
    seen.clear()
    await client.manifest(UP, "team/app", "v1", head=True)
    assert seen == [("https://registry.test/v2/team/app/manifests/v1", "Bearer T1")]  # no second token request


async def test_basic_challenge_is_answered_with_the_credentials() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != basic("bob", "secret"):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": "application/json"})

    assert (await client_for(handler).manifest(UP, "app", "v1")).content == MANIFEST


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, UpstreamMissing), (401, UpstreamMissing), (403, UpstreamMissing), (429, UpstreamDown), (502, UpstreamDown)],
)
async def test_failures_are_missing_or_down(status: int, error: type[Exception]) -> None:
    client = client_for(lambda request: httpx.Response(status))
    with pytest.raises(error):
        await client.manifest(Upstream("c", "https://r.test", None, None, 60), "app", "v1")


async def test_no_connection_is_down() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(UpstreamDown):
        await client_for(handler).manifest(UP, "app", "v1")


def test_docker_hub_official_images_get_library() -> None:
    hub = Upstream("hub", DOCKER_HUB_URL, None, None, 60)
    assert hub.repository("hub/alpine") == "library/alpine"
    assert hub.repository("hub/grafana/grafana") == "grafana/grafana"
    assert UP.repository("cache/alpine") == "alpine"  # any other registry: the path as it is


def test_upstream_urls() -> None:
    assert normalize_url("docker.io") == DOCKER_HUB_URL
    assert normalize_url("https://index.docker.io/") == DOCKER_HUB_URL
    assert normalize_url("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"
    for bad in ("ftp://x", "https://u:p@x", "https://x/?q=1"):
        with pytest.raises(Invalid):
            normalize_url(bad)


def test_tags_are_fresh_for_the_ttl() -> None:
    now = utcnow()
    assert is_fresh(now - timedelta(seconds=59), 60, now)
    assert not is_fresh(now - timedelta(seconds=60), 60, now)
    assert not is_fresh(None, 60, now)
