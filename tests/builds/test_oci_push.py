"""Pushing a built image from an OCI image layout (``dockyard.builds.oci_push``): to a fake registry over httpx's
mock transport (it keeps what it is sent, checks every blob against its digest, and refuses a step when told to) —
blobs it has are skipped, blobs a base's repository has are mounted, the rest uploaded whole, the manifest put under
every tag, and each refusal fails the build at ``pushing`` with a reason — and to a real Dockyard with the build's
token, which refuses the upload of a token that may only pull."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from dockyard.builds.executor import BuildFailed
from dockyard.builds.oci_push import push_layout
from tests.support.app_server import AppServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
BASE_URL = "https://registry.test"

_UPLOADS = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<session>[^/]*)$")
_BLOB = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>[a-z0-9]+:[a-f0-9]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<reference>[^/]+)$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Image:
    """An image written to an OCI layout the way ``buildah push … oci:DIR`` writes one."""

    layout: Path
    config: bytes
    layers: list[bytes]
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        return {sha256(b): b for b in [self.config, *self.layers]}


def write_layout(
    layout: Path, seed: str = "", *, layer_sizes: tuple[int, ...] = (300, 2_500_000), base_layers: Sequence[bytes] = ()
) -> Image:
    """An image of ``base_layers`` and layers of ``layer_sizes`` (made from ``seed``: the same seed, the same image)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    seed = seed or uuid.uuid4().hex
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    own = [hashlib.sha256(f"{seed}{i}".encode()).digest() * (size // 32) for i, size in enumerate(layer_sizes)]
    layers = [*base_layers, *own]
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(b), "size": len(b)} for b in layers],
        }
    ).encode()
    for data in [config, *layers, manifest]:
        (blobs / sha256(data).removeprefix("sha256:")).write_bytes(data)
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest)}],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return Image(layout, config, layers, manifest)


@dataclass
class FakeRegistry:
    """Blobs and manifests per repository; ``refuse`` maps a step (``start``, ``blob``, ``manifest``) to the status
    it answers with; ``stored_as`` makes it claim another manifest digest."""

    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)
    stored_as: str | None = None

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=BASE_URL, transport=httpx.MockTransport(self.handle))

    def has(self, repository: str, digest: str) -> bool:
        return digest in self.blobs.get(repository, {})

    def _session(self, repository: str) -> httpx.Response:
        if "start" in self.refuse:
            return httpx.Response(self.refuse["start"], json={"errors": [{"code": "DENIED"}]})
        session = uuid.uuid4().hex
        self.sessions[session] = repository
        # Absolute, with a query of its own, as registries hand them out: the digest must be added with "&".
        return httpx.Response(
            202, headers={"Location": f"{BASE_URL}/v2/{repository}/blobs/uploads/{session}?_state=s1"}
        )

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path, params = request.url.path, request.url.params
        self.requests.append((request.method, path + (f"?{request.url.query.decode()}" if request.url.query else "")))
        if (found := _BLOB.match(path)) and request.method == "HEAD":
            return httpx.Response(200 if self.has(found["repo"], found["digest"]) else 404)
        if (found := _UPLOADS.match(path)) and request.method == "POST":
            repository = found["repo"]
            if "mount" in params:
                source, digest = params["from"], params["mount"]
                if self.has(source, digest):
                    self.blobs.setdefault(repository, {})[digest] = self.blobs[source][digest]
                    return httpx.Response(201, headers={"Location": f"/v2/{repository}/blobs/{digest}"})
            return self._session(repository)
        if (found := _UPLOADS.match(path)) and request.method == "PUT":
            body = await request.aread()
            if "blob" in self.refuse:
                return httpx.Response(self.refuse["blob"])
            assert params["_state"] == "s1"  # the session's own query was kept
            digest = params["digest"]
            if sha256(body) != digest or int(request.headers["content-length"]) != len(body):
                return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID"}]})
            self.blobs.setdefault(self.sessions.pop(found["session"]), {})[digest] = body
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        if (found := _MANIFEST.match(path)) and request.method == "PUT":
            body = await request.aread()
            if "manifest" in self.refuse:
                text = '{"errors":[{"code":"TAG_INVALID","message":"immutable tag"}]}'
                return httpx.Response(self.refuse["manifest"], text=text)
            manifest = json.loads(body)
            missing = [
                d["digest"]
                for d in [manifest["config"], *manifest["layers"]]
                if not self.has(found["repo"], d["digest"])
            ]
            if missing:
                return httpx.Response(400, json={"errors": [{"code": "MANIFEST_BLOB_UNKNOWN", "detail": missing}]})
            self.manifests[(found["repo"], found["reference"])] = (request.headers["content-type"], body)
            return httpx.Response(201, headers={"Docker-Content-Digest": self.stored_as or sha256(body)})
        return httpx.Response(405)


def push(
    registry: FakeRegistry, image: Image, repository: str, tags: list[str], mount_from: tuple[str, ...] = ()
) -> tuple[str, str, int]:
    async def main() -> tuple[str, str, int]:
        async with registry.client() as client:
            return await push_layout(client, image.layout, repository, tags, mount_from)

    return asyncio.run(main())


def failure(
    registry: FakeRegistry, image: Image, repository: str = "acme/app", tags: tuple[str, ...] = ("v1",)
) -> BuildFailed:
    with pytest.raises(BuildFailed) as failed:
        push(registry, image, repository, list(tags))
    assert failed.value.stage == "pushing"
    return failed.value


# -- the fake registry -------------------------------------------------------------------------------------------


@pytest.mark.embedded_only
def test_every_blob_is_uploaded_whole_then_the_manifest_under_every_tag(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout")
    registry = FakeRegistry()

    result = push(registry, image, "acme/app", ["v1", "latest"])

    assert result == (image.digest, OCI_MANIFEST, len(image.manifest))
    assert registry.blobs["acme/app"] == image.blobs
    for tag in ("v1", "latest"):
        assert registry.manifests[("acme/app", tag)] == (OCI_MANIFEST, image.manifest)
    puts = [target for method, target in registry.requests if method == "PUT" and "/blobs/uploads/" in target]
    assert len(puts) == 3
    assert all("?_state=s1&digest=sha256%3A" in target for target in puts)


@pytest.mark.embedded_only
def test_blobs_the_repository_has_are_skipped_and_a_bases_blobs_are_mounted(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout")
    config, (base_layer, own_layer) = sha256(image.config), [sha256(b) for b in image.layers]
    registry = FakeRegistry()
    registry.blobs["acme/app"] = {config: image.config}  # pushed before
    registry.blobs["library/base"] = {base_layer: image.layers[0]}

    push(registry, image, "acme/app", ["v2"], mount_from=("library/base",))

    assert registry.blobs["acme/app"] == image.blobs
    posts = [target for method, target in registry.requests if method == "POST"]
    assert posts == [
        f"/v2/acme/app/blobs/uploads/?mount={base_layer.replace(':', '%3A')}&from=library%2Fbase",  # mounted
        f"/v2/acme/app/blobs/uploads/?mount={own_layer.replace(':', '%3A')}&from=library%2Fbase",  # 202: upload
    ]
    uploaded = [target for method, target in registry.requests if method == "PUT" and "/blobs/" in target]
    assert len(uploaded) == 1
    assert own_layer.replace(":", "%3A") in uploaded[0]


@pytest.mark.embedded_only
def test_a_failed_mount_uploads_into_the_session_it_opened(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout", layer_sizes=(64,))
    registry = FakeRegistry()

    push(registry, image, "acme/app", ["v1"], mount_from=("acme/base", "library/other"))

    assert registry.blobs["acme/app"] == image.blobs
    posts = [target for method, target in registry.requests if method == "POST"]
    # The first source's 202 opened an upload: the second source is not asked, no other session is opened.
    assert len(posts) == 2
    assert all("from=acme%2Fbase" in p for p in posts)
    assert registry.sessions == {}


@pytest.mark.embedded_only
@pytest.mark.parametrize("status", [401, 403, 404, 413])
def test_a_refused_upload_fails_the_build(tmp_path: Path, status: int) -> None:
    registry = FakeRegistry(refuse={"start": status})
    failed = failure(registry, write_layout(tmp_path / "layout"))
    assert failed.reason == f"blob upload refused ({status})"
    assert registry.manifests == {}


@pytest.mark.embedded_only
def test_a_refused_blob_fails_the_build_naming_it(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout")
    registry = FakeRegistry(refuse={"blob": 400})
    assert failure(registry, image).reason == f"blob {sha256(image.config)} refused (400)"
    assert registry.manifests == {}


@pytest.mark.embedded_only
def test_a_blob_whose_bytes_do_not_match_its_digest_is_refused_by_the_registry(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout")
    layer = sha256(image.layers[0])
    (image.layout / "blobs" / "sha256" / layer.removeprefix("sha256:")).write_bytes(b"changed on disk")
    registry = FakeRegistry()
    assert failure(registry, image).reason == f"blob {layer} refused (400)"
    assert registry.manifests == {}


@pytest.mark.embedded_only
def test_a_refused_manifest_fails_the_build_with_the_registrys_words(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout")
    registry = FakeRegistry(refuse={"manifest": 400})
    failed = failure(registry, image, tags=("1.0",))
    assert failed.reason == (
        'pushing the manifest as 1.0 was refused (400): {"errors":[{"code":"TAG_INVALID","message":"immutable tag"}]}'
    )
    assert registry.blobs["acme/app"] == image.blobs  # the blobs went in first


@pytest.mark.embedded_only
def test_a_manifest_stored_under_another_digest_fails_the_build(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout")
    other = "sha256:" + "f" * 64
    failed = failure(FakeRegistry(stored_as=other), image, tags=("a", "b"))
    assert failed.reason == f"the registry stored the manifest as {other}"


@pytest.mark.embedded_only
@pytest.mark.parametrize("count", [0, 2])
def test_a_layout_must_hold_exactly_one_image(tmp_path: Path, count: int) -> None:
    image = write_layout(tmp_path / "layout")
    index = json.loads((image.layout / "index.json").read_text())
    index["manifests"] = index["manifests"] * count
    (image.layout / "index.json").write_text(json.dumps(index))
    registry = FakeRegistry()
    assert failure(registry, image).reason == f"the image layout holds {count} images, not one"
    assert registry.requests == []


@pytest.mark.embedded_only
@pytest.mark.parametrize("digest", ["md5:0123abcd", "sha256:../../../etc/passwd", "sha256:", "sha512:ab/cd"])
def test_a_bad_digest_in_the_layout_is_not_followed(tmp_path: Path, digest: str) -> None:
    image = write_layout(tmp_path / "layout")
    manifest = json.loads(image.manifest)
    manifest["layers"][0]["digest"] = digest
    body = json.dumps(manifest).encode()
    (image.layout / "blobs" / "sha256" / sha256(body).removeprefix("sha256:")).write_bytes(body)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(body), "size": len(body)}]}
    (image.layout / "index.json").write_text(json.dumps(index))
    assert failure(FakeRegistry(), image).reason == f"the image layout names a bad digest {digest!r}"


@pytest.mark.embedded_only
def test_the_index_naming_a_bad_digest_is_refused_before_reading(tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout")
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:../index.json"}]}
    (image.layout / "index.json").write_text(json.dumps(index))
    assert failure(FakeRegistry(), image).reason == "the image layout names a bad digest 'sha256:../index.json'"


# -- a real Dockyard ---------------------------------------------------------------------------------------------


def token_for(server: AppServer, *scopes: str) -> str:
    response = httpx.get(
        f"{server.url}/v2/token",
        params=[("service", server.host), *(("scope", s) for s in scopes)],
        auth=("admin", AppServer.ADMIN_PASSWORD),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def push_to(
    server: AppServer,
    token: str,
    image: Image,
    repository: str,
    tags: list[str],
    mount_from: tuple[str, ...] = (),
    answers: list[tuple[str, str, int]] | None = None,
) -> tuple[str, str, int]:
    """``push_layout`` with the build's token, as the executor calls it; ``answers`` collects (method, path,
    status) of every request."""

    async def record(response: httpx.Response) -> None:
        if answers is not None:
            answers.append((response.request.method, response.request.url.path, response.status_code))

    async def main() -> tuple[str, str, int]:
        async with httpx.AsyncClient(
            base_url=server.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            event_hooks={"response": [record]},
        ) as client:
            return await push_layout(client, image.layout, repository, tags, mount_from)

    return asyncio.run(main())


def test_a_build_is_pushed_to_dockyard_mounting_its_bases_blobs(secure_server: AppServer, tmp_path: Path) -> None:
    base = write_layout(tmp_path / "base", layer_sizes=(5000, 300))
    base_token = token_for(secure_server, "repository:admin/push-base:pull,push")
    push_to(secure_server, base_token, base, "admin/push-base", ["1"])
    # The build's image on top of the base's first layer, as FROM gives it.
    built = write_layout(tmp_path / "built", layer_sizes=(2_500_000,), base_layers=[base.layers[0]])
    token = token_for(secure_server, "repository:admin/push-app:pull,push", "repository:admin/push-base:pull")
    answers: list[tuple[str, str, int]] = []

    result = push_to(secure_server, token, built, "admin/push-app", ["v1", "latest"], ("admin/push-base",), answers)

    assert result == (built.digest, OCI_MANIFEST, len(built.manifest))
    assert [status for method, path, status in answers if method == "POST"] == [202, 201, 202]  # config, base, own
    assert [status for method, path, status in answers if method == "PUT"] == [201, 201, 201, 201]  # 2 blobs, 2 tags
    with httpx.Client(base_url=secure_server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for tag in ("v1", "latest"):
            got = client.get(f"/v2/admin/push-app/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert (got.status_code, got.content) == (200, built.manifest)
        for digest, data in built.blobs.items():
            assert client.get(f"/v2/admin/push-app/blobs/{digest}").content == data


def test_dockyard_refuses_the_upload_of_a_token_that_may_only_pull(secure_server: AppServer, tmp_path: Path) -> None:
    image = write_layout(tmp_path / "layout", layer_sizes=(64,))
    token = token_for(secure_server, "repository:admin/pull-only:pull")
    with pytest.raises(BuildFailed) as failed:
        push_to(secure_server, token, image, "admin/pull-only", ["v1"])
    assert failed.value.stage == "pushing"
    assert failed.value.reason == "blob upload refused (401)"  # the token has no push: a Bearer challenge
