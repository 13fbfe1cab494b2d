"""Replication's remote end (``replication.endpoints.RemoteRegistry``) against a recording fake registry on httpx's
mock transport: paginated lists follow ``Link``, a list that is not JSON is the remote being down, a manifest that
does not match its digest is refused, a mount the remote answers with an upload session cancels that session, an
upload opened without a ``Location`` and a refused manifest say what went wrong, and deleting a tag on a registry
that deletes only by digest deletes the digest only when no other tag names it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from dockyard.proxy.manage import Upstream
from dockyard.proxy.upstream import UpstreamClient, UpstreamDown
from dockyard.replication.endpoints import ManifestCopy, RemoteRegistry

pytestmark = pytest.mark.embedded_only

URL = "http://remote.test"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}'
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()

Handler = Callable[[httpx.Request], httpx.Response]


class Remote:
    """Answers with ``handler`` and records ``METHOD path?query`` of every request."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        query = f"?{request.url.query.decode()}" if request.url.query else ""
        self.seen.append(f"{request.method} {request.url.path}{query}")
        return self.handler(request)


def remote(handler: Handler) -> tuple[RemoteRegistry, Remote]:
    recorder = Remote(handler)
    client = UpstreamClient(5.0, transport=httpx.MockTransport(recorder))
    return RemoteRegistry(client, Upstream("mirror", URL, None, None, 60)), recorder


async def test_tags_follow_the_link_header_across_pages() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "last=b" in str(request.url):
            return httpx.Response(200, json={"tags": ["c"]})
        link = '</v2/app/tags/list?n=1000&last=b>; rel="next"'
        return httpx.Response(200, json={"tags": ["a", "b"]}, headers={"Link": link})

    endpoint, seen = remote(handler)
    assert await endpoint.tags("app") == ["a", "b", "c"]
    assert seen.seen == ["GET /v2/app/tags/list?n=1000", "GET /v2/app/tags/list?n=1000&last=b"]


async def test_a_list_that_is_not_json_is_the_remote_being_down() -> None:
    endpoint, _ = remote(lambda request: httpx.Response(200, content=b"<html>maintenance</html>"))
    with pytest.raises(UpstreamDown, match="tags list is not JSON"):
        await endpoint.tags("app")


async def test_a_manifest_that_does_not_match_its_digest_is_refused() -> None:
    other = b'{"schemaVersion":2}'
    endpoint, _ = remote(lambda request: httpx.Response(200, content=other, headers={"Content-Type": OCI_MANIFEST}))
    with pytest.raises(UpstreamDown, match="does not match"):
        await endpoint.manifest("app", DIGEST)
    found = await endpoint.manifest("app", "v1")  # by tag: whatever it sent, under the digest of what it sent
    assert found is not None
    assert found.digest == "sha256:" + hashlib.sha256(other).hexdigest()


async def test_a_manifest_digest_the_head_does_not_give_comes_from_the_manifest() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = b"" if request.method == "HEAD" else MANIFEST
        return httpx.Response(200, content=body, headers={"Content-Type": OCI_MANIFEST})  # no Docker-Content-Digest

    endpoint, seen = remote(handler)
    assert await endpoint.manifest_digest("app", "v1") == DIGEST
    assert seen.seen == ["HEAD /v2/app/manifests/v1", "GET /v2/app/manifests/v1"]


async def test_a_mount_answered_with_an_upload_session_cancels_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/v2/app/blobs/uploads/u1"})
        return httpx.Response(204)

    endpoint, seen = remote(handler)
    assert await endpoint.mount("app", DIGEST, "base") is False
    mount = f"POST /v2/app/blobs/uploads/?mount={DIGEST.replace(':', '%3A')}&from=base"
    assert seen.seen == [mount, "DELETE /v2/app/blobs/uploads/u1"]


async def test_an_upload_opened_without_a_location_is_an_error() -> None:
    endpoint, _ = remote(lambda request: httpx.Response(202))

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"

    with pytest.raises(UpstreamDown, match="without a Location"):
        await endpoint.put_blob("app", DIGEST, 1, chunks())


async def test_a_refused_manifest_says_what_the_remote_said() -> None:
    refusal = {"errors": [{"code": "MANIFEST_BLOB_UNKNOWN", "message": "blob unknown to registry"}]}
    endpoint, _ = remote(lambda request: httpx.Response(400, json=refusal))
    with pytest.raises(UpstreamDown, match="MANIFEST_BLOB_UNKNOWN"):
        await endpoint.put_manifest("app", "v1", ManifestCopy(DIGEST, OCI_MANIFEST, MANIFEST))


def _by_digest_only(tags: dict[str, str]) -> Handler:
    """A registry that deletes manifests only by digest (distribution): ``tags`` maps tag → digest."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/tags/list"):
            return httpx.Response(200, json={"tags": sorted(tags)})
        reference = path.rsplit("/", 1)[1]
        if request.method == "DELETE":
            return httpx.Response(202 if reference.startswith("sha256:") else 400, json={"errors": []})
        return httpx.Response(200, headers={"Docker-Content-Digest": tags[reference], "Content-Type": OCI_MANIFEST})

    return handler


async def test_deleting_a_tag_by_digest_when_no_other_tag_names_it() -> None:
    endpoint, seen = remote(_by_digest_only({"v1": DIGEST, "v2": "sha256:" + "0" * 64}))
    await endpoint.delete_tag("app", "v1")
    assert seen.seen[-1] == f"DELETE /v2/app/manifests/{DIGEST}"


async def test_a_tag_is_not_deleted_by_digest_when_another_tag_names_the_same_manifest() -> None:
    endpoint, seen = remote(_by_digest_only({"v1": DIGEST, "latest": DIGEST}))
    with pytest.raises(UpstreamDown, match="tag latest names the same manifest"):
        await endpoint.delete_tag("app", "v1")
    assert f"DELETE /v2/app/manifests/{DIGEST}" not in seen.seen
