"""Helpers for Hub API tests against a running secure server: people (a user with an API-token client for
``/api`` and ``/v1`` and a Basic-auth client for ``/v2``), pushes of images for given platforms and of
multi-platform indexes, repository URLs and requests, and RFC 3339 checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.support.hub import HubAdmin
from tests.support.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, canonical, descriptor, push_blob, sha256
from tests.support.server import Server

ANY_MANIFEST = ", ".join((OCI_MANIFEST, OCI_INDEX))


def api_token(server: Server, username: str, secret: str) -> str:
    response = httpx.post(
        f"{server.url}/api/v2/auth/token", json={"identifier": username, "secret": secret}, timeout=30
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@dataclass
class Person:
    name: str
    password: str
    api: httpx.Client  # Bearer API token: /api/v2 and /v1
    registry: httpx.Client  # Basic auth: /v2

    def close(self) -> None:
        self.api.close()
        self.registry.close()


@dataclass
class People:
    """Makes users (unique names) on a secure server; ``anonymous`` is a client without credentials."""

    server: Server
    hub: HubAdmin
    anonymous: httpx.Client
    made: list[Person] = field(default_factory=list)

    @classmethod
    def open(cls, server: Server) -> People:
        return cls(server, HubAdmin(server), httpx.Client(base_url=server.url, timeout=30))

    def _person(self, name: str, password: str) -> Person:
        token = api_token(self.server, name, password)
        person = Person(
            name,
            password,
            httpx.Client(base_url=self.server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}),
            httpx.Client(base_url=self.server.url, timeout=30, auth=(name, password)),
        )
        self.made.append(person)
        return person

    def user(self, prefix: str = "user") -> Person:
        name, password = self.hub.user(prefix)
        return self._person(name, password)

    def admin(self) -> Person:
        return self._person("admin", Server.ADMIN_PASSWORD)

    def close(self) -> None:
        for person in self.made:
            person.close()
        self.anonymous.close()
        self.hub.close()


@dataclass
class Image:
    manifest: bytes
    digest: str
    config: bytes
    layers: list[bytes]

    @property
    def size(self) -> int:
        """What the Hub reports as an image's size: its config and layers."""
        return len(self.config) + sum(len(layer) for layer in self.layers)


def push_platform_image(
    client: httpx.Client,
    repo: str,
    tag: str | None,
    *,
    architecture: str = "amd64",
    os: str = "linux",
    variant: str | None = None,
    history: list[dict[str, Any]] | None = None,
    layers: int = 1,
) -> Image:
    """Push an image of one platform (by digest when ``tag`` is None)."""
    seed = uuid.uuid4().hex
    platform: dict[str, Any] = {"architecture": architecture, "os": os}
    if variant:
        platform["variant"] = variant
    config = canonical({**platform, "seed": seed, "history": history or [], "rootfs": {"type": "layers"}})
    blobs = [f"layer-{n}-{seed}".encode() * (n + 1) for n in range(layers)]
    for blob in (config, *blobs):
        push_blob(client, repo, blob)
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, blob) for blob in blobs],
        }
    )
    digest = sha256(body)
    response = client.put(f"/v2/{repo}/manifests/{tag or digest}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return Image(body, digest, config, blobs)


def push_index(client: httpx.Client, repo: str, tag: str, children: list[tuple[Image, dict[str, str]]]) -> str:
    """Push an OCI index of ``children`` (image, platform) under ``tag``; returns its digest."""
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, image.manifest, platform=platform) for image, platform in children],
        }
    )
    response = client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_INDEX})
    assert response.status_code == 201, response.text
    return sha256(body)


def pull(client: httpx.Client, repo: str, reference: str, *, method: str = "GET") -> None:
    response = client.request(method, f"/v2/{repo}/manifests/{reference}", headers={"Accept": ANY_MANIFEST})
    assert response.status_code == 200, response.text


def rfc3339(value: Any) -> datetime:
    """``value`` is an RFC 3339 UTC time written with ``Z``; returns it parsed."""
    assert isinstance(value, str), value
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.utcoffset() == timedelta(0)
    return parsed


def repo_url(namespace: str, name: str = "", *, legacy: bool = False) -> str:
    """``/api/v2/namespaces/{ns}/repositories[/{name}]``, or the legacy ``/api/v2/repositories/{ns}[/{name}]``."""
    base = f"/api/v2/repositories/{namespace}" if legacy else f"/api/v2/namespaces/{namespace}/repositories"
    return f"{base}/{name}" if name else base


def tags_url(namespace: str, name: str, tag: str = "") -> str:
    return f"{repo_url(namespace, name)}/tags" + (f"/{tag}" if tag else "")


def get_json(client: httpx.Client, url: str, **params: Any) -> dict[str, Any]:
    """GET a 200 JSON answer."""
    response = client.get(url, params=params or None)  # no params: keep the query of a next/previous link
    assert response.status_code == 200, (url, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def create_repository(person: Person, name: str, **body: Any) -> dict[str, Any]:
    """Create ``name`` in the person's namespace through the Hub API; returns the repository."""
    response = person.api.post(repo_url(person.name), json={"name": name, "namespace": person.name, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def names(page: dict[str, Any]) -> list[str]:
    """The ``name`` of each result of a list page."""
    return [item["name"] for item in page["results"]]
