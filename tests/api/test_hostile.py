"""Hostile input: each request gets the right error, leaves nothing behind, and never shows a traceback.

These tests run against a server of their own so that its log can be checked for unhandled errors at the end.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    canonical,
    descriptor,
    push_blob,
    push_image,
    sha256,
    unique_name,
)
from tests.support.server import DockyardServer
from tests.support.storage_view import StorageView

MiB = 1024 * 1024
BAD_DIGESTS = [
    "sha256:xyz",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha512:" + "a" * 64,
    "sha256:" + "A" * 64,
    "sha256:" + "g" * 64,
    "sha256:",
    ":" + "a" * 64,
    "sha256:" + "a" * 64 + "=",
]


def no_traceback(body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    assert "Traceback" not in text, text[:2000]
    assert 'File "' not in text, text[:2000]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path_factory.mktemp("hostile") / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def hc(hostile_server: DockyardServer) -> Iterator[httpx.Client]:
    """A client on the hostile server that checks every response body for leaked tracebacks."""

    def check(response: httpx.Response) -> None:
        response.read()
        no_traceback(response.content)
        assert response.status_code < 500, (response.request.method, response.request.url, response.text)

    with httpx.Client(base_url=hostile_server.url, timeout=60, event_hooks={"response": [check]}) as c:
        yield c
    assert httpx.get(f"{hostile_server.url}/v2/", timeout=10).status_code == 200


def error_code(response: httpx.Response) -> str:
    body = response.json()
    code: str = body["errors"][0]["code"]
    assert {"code", "message", "detail"} <= set(body["errors"][0])
    return code


def expect(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    assert error_code(response) == code, response.text


def raw(server: DockyardServer, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
    """A request whose target is sent exactly as given (no client-side path normalisation)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers={"Content-Type": OCI_MANIFEST} if body else {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    no_traceback(data)
    return response.status, data


def catalog(client: httpx.Client) -> list[str]:
    names: list[str] = []
    url: str | None = "/v2/_catalog?n=1000"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        names.extend(response.json()["repositories"])
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    return names


def assert_repo_absent(client: httpx.Client, name: str) -> None:
    assert name not in catalog(client)
    expect(client.get(f"/v2/{name}/tags/list"), 404, "NAME_UNKNOWN")


def tags(client: httpx.Client, repo: str) -> list[str]:
    response = client.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 200, response.text
    found: list[str] = response.json()["tags"] or []
    return found


def upload_range(client: httpx.Client, location: str) -> str:
    response = client.get(location)
    assert response.status_code == 204, response.text
    return response.headers["range"]


def blob_files(server: DockyardServer) -> list[str]:
    return sorted(StorageView(server).blobs())


# -- names ------------------------------------------------------------------------------------------------------


TRAVERSALS = [
    "..",
    "../etc",
    "../../etc/passwd",
    "%2e%2e/etc",
    "%2e%2e%2f%2e%2e%2fetc",
    "a/../../etc",
    "a/%2e%2e/%2e%2e/etc",
    "a/..%2f..%2fetc",
    "a/./b",
    "a/%2e/b",
    "./a",
    "a/b/..",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_path_traversal_in_names_is_rejected(hostile_server: DockyardServer, hc: httpx.Client, name: str) -> None:
    before = catalog(hc)
    files_before = blob_files(hostile_server)
    digest = sha256(b"traversal")
    requests = [
        ("GET", f"/v2/{name}/tags/list", None),
        ("GET", f"/v2/{name}/manifests/latest", None),
        ("PUT", f"/v2/{name}/manifests/latest", b'{"schemaVersion":2}'),
        ("POST", f"/v2/{name}/blobs/uploads/", None),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", b"traversal"),
        ("POST", f"/v2/a/blobs/uploads/?mount={digest}&from={name}", None),
        ("GET", f"/v2/{name}/blobs/{digest}", None),
        ("DELETE", f"/v2/{name}/blobs/{digest}", None),
        ("GET", f"/v2/{name}/referrers/{digest}", None),
    ]
    for method, target, body in requests:
        status, data = raw(hostile_server, method, target, body)
        # Either the name is refused, or the mangled path matches no route/method at all: never a success.
        assert status in (400, 404, 405), (method, target, status, data)
        code = json.loads(data)["errors"][0]["code"]
        if status == 400:
            assert code == "NAME_INVALID", (method, target, data)
        else:
            assert code in ("UNSUPPORTED", "NAME_UNKNOWN", "BLOB_UNKNOWN", "MANIFEST_UNKNOWN"), (target, data)
    assert catalog(hc) == before
    assert blob_files(hostile_server) == files_before
    # Nothing was created outside the storage tree either.
    assert not list(hostile_server.data_dir.parent.rglob("etc"))
    assert not list(hostile_server.data_dir.parent.rglob("passwd"))


def test_overlong_and_uppercase_names_and_tags(hc: httpx.Client) -> None:
    too_long = "a" * 256
    longest = "a" * 255
    for name in (too_long, f"x/{'b' * 254}", "Upper", "library/Hello", "UPPER/CASE"):
        expect(hc.post(f"/v2/{name}/blobs/uploads/"), 400, "NAME_INVALID")
        expect(
            hc.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(b"z")}, content=b"z"), 400, "NAME_INVALID"
        )
        expect(hc.get(f"/v2/{name}/tags/list"), 400, "NAME_INVALID")
        expect(hc.put(f"/v2/{name}/manifests/v1", content=b"{}"), 400, "NAME_INVALID")
        assert name not in catalog(hc)
        assert name.lower() not in catalog(hc)
    # 255 characters is still a valid (if unknown) name.
    expect(hc.get(f"/v2/{longest}/tags/list"), 404, "NAME_UNKNOWN")

    repo = unique_name("hostile")
    image = push_image(hc, repo, "v1")
    for tag in ("t" * 129, "UPPER-is-fine-but-this-is-too-long-" + "x" * 100, "-dash", ".dot", "a:b"):
        response = hc.put(f"/v2/{repo}/manifests/{tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 400, (tag, response.text)
        assert error_code(response) in ("TAG_INVALID", "DIGEST_INVALID"), response.text
    longest_tag = "t" * 128
    response = hc.put(
        f"/v2/{repo}/manifests/{longest_tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    assert sorted(tags(hc, repo)) == sorted(["v1", longest_tag])


# -- digests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_bogus_digests_are_rejected_and_leave_nothing(hc: httpx.Client, bad: str) -> None:
    repo = unique_name("hostile")
    push_blob(hc, repo, b"existing")
    location = hc.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    assert hc.patch(location, content=b"partial").status_code == 202

    expect(hc.get(f"/v2/{repo}/blobs/{bad}"), 400, "DIGEST_INVALID")
    head = hc.head(f"/v2/{repo}/blobs/{bad}")
    assert head.status_code == 400
    assert head.content == b""
    expect(hc.delete(f"/v2/{repo}/blobs/{bad}"), 400, "DIGEST_INVALID")
    expect(hc.get(f"/v2/{repo}/manifests/{bad}"), 400, "DIGEST_INVALID")
    expect(hc.put(f"/v2/{repo}/manifests/{bad}", content=b"{}"), 400, "DIGEST_INVALID")
    expect(hc.put(location, params={"digest": bad}), 400, "DIGEST_INVALID")
    expect(hc.put(location, params={"digest": bad}, content=b"more"), 400, "DIGEST_INVALID")
    expect(hc.post(f"/v2/{repo}/blobs/uploads/", params={"mount": bad, "from": repo}), 400, "DIGEST_INVALID")
    expect(hc.post(f"/v2/{repo}/blobs/uploads/", params={"digest-algorithm": "md5"}), 400, "DIGEST_INVALID")

    # The session is untouched and still completes.
    assert upload_range(hc, location) == "0-6"
    assert hc.put(location, params={"digest": sha256(b"partial")}).status_code == 201

    # A monolithic upload with a bogus digest to a new repository creates neither blob nor repository.
    fresh = unique_name("hostile")
    expect(hc.post(f"/v2/{fresh}/blobs/uploads/", params={"digest": bad}, content=b"data"), 400, "DIGEST_INVALID")
    assert_repo_absent(hc, fresh)


# -- Content-Range and Range ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_range", "status", "code"),
    [
        ("abc", 416, "RANGE_INVALID"),
        ("5-2", 416, "RANGE_INVALID"),
        ("-5", 416, "RANGE_INVALID"),
        ("bytes=5-", 416, "RANGE_INVALID"),
        ("5-99999999999999999999999", 416, "RANGE_INVALID"),
        ("5-20", 416, "BLOB_UPLOAD_INVALID"),  # says 16 bytes, Content-Length says 5
        ("5-5", 416, "BLOB_UPLOAD_INVALID"),  # says 1 byte, Content-Length says 5
        ("0-4", 416, "RANGE_INVALID"),  # right length, wrong offset
    ],
)
def test_invalid_content_range_leaves_upload_unchanged(
    hc: httpx.Client, content_range: str, status: int, code: str
) -> None:
    repo = unique_name("hostile")
    location = hc.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    assert hc.patch(location, content=b"hello", headers={"Content-Range": "0-4"}).status_code == 202
    response = hc.patch(location, content=b"world", headers={"Content-Range": content_range})
    expect(response, status, code)
    assert upload_range(hc, location) == "0-4"
    response = hc.put(
        location, params={"digest": sha256(b"helloworld")}, content=b"world", headers={"Content-Range": content_range}
    )
    expect(response, status, code)
    assert upload_range(hc, location) == "0-4"
    assert hc.head(f"/v2/{repo}/blobs/{sha256(b'helloworld')}").status_code == 404
    # Still resumable from where it was.
    assert hc.patch(location, content=b"world", headers={"Content-Range": "5-9"}).status_code == 202
    assert hc.put(location, params={"digest": sha256(b"helloworld")}).status_code == 201
    assert hc.get(f"/v2/{repo}/blobs/{sha256(b'helloworld')}").content == b"helloworld"


@pytest.mark.parametrize("range_header", ["bytes=abc", "bytes=999999-", "bytes=-0", "bytes=", "bytes=3-1", "items=0-1"])
def test_bad_range_headers_on_blob_get(hc: httpx.Client, range_header: str) -> None:
    repo = unique_name("hostile")
    data = b"range me please"
    digest = push_blob(hc, repo, data)
    response = hc.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": range_header})
    expect(response, 416, "RANGE_INVALID")
    assert response.headers["content-range"] == f"bytes */{len(data)}"
    full = hc.get(f"/v2/{repo}/blobs/{digest}")
    assert full.status_code == 200
    assert full.content == data


# -- truncated bodies -------------------------------------------------------------------------------------------


def send_truncated(server: DockyardServer, method: str, target: str, content_type: str) -> None:
    """Declare 1000 bytes, send 10, hang up."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            (
                f"{method} {target} HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: {content_type}\r\n"
                "Content-Length: 1000\r\n\r\n"
            ).encode()
            + b"0123456789"
        )
        time.sleep(0.2)


def retry_conflict(send: Any, attempts: int = 50) -> httpx.Response:
    """The server notices a hung-up client asynchronously; until then the upload may still be leased (409)."""
    for _ in range(attempts):
        response: httpx.Response = send()
        if response.status_code != 409:
            return response
        time.sleep(0.1)
    return response


def test_body_shorter_than_content_length(hostile_server: DockyardServer, hc: httpx.Client) -> None:
    repo = unique_name("hostile")
    image = push_image(hc, repo, "v1")

    # PATCH: the partial bytes are discarded, the session stays where it was.
    location = hc.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    assert hc.patch(location, content=b"abc").status_code == 202
    send_truncated(hostile_server, "PATCH", location, "application/octet-stream")
    assert upload_range(hc, location) == "0-2"
    response = retry_conflict(lambda: hc.patch(location, content=b"def", headers={"Content-Range": "3-5"}))
    assert response.status_code == 202, response.text
    assert response.headers["range"] == "0-5"
    assert hc.put(location, params={"digest": sha256(b"abcdef")}).status_code == 201
    assert hc.get(f"/v2/{repo}/blobs/{sha256(b'abcdef')}").content == b"abcdef"

    # Closing PUT: nothing is committed.
    location = hc.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    send_truncated(hostile_server, "PUT", f"{location}?digest={sha256(b'0123456789')}", "application/octet-stream")
    assert hc.head(f"/v2/{repo}/blobs/{sha256(b'0123456789')}").status_code == 404
    response = retry_conflict(lambda: hc.get(location))
    assert response.status_code == 204
    assert response.headers["range"] == "0-0"

    # Monolithic POST to a new repository: no blob, no repository.
    fresh = unique_name("hostile")
    send_truncated(hostile_server, "POST", f"/v2/{fresh}/blobs/uploads/?digest={sha256(b'x' * 1000)}", "x/y")
    assert hc.head(f"/v2/{repo}/blobs/{sha256(b'x' * 1000)}").status_code == 404
    assert_repo_absent(hc, fresh)

    # Manifest PUT: nothing stored.
    send_truncated(hostile_server, "PUT", f"/v2/{repo}/manifests/truncated", OCI_MANIFEST)
    expect(hc.get(f"/v2/{repo}/manifests/truncated"), 404, "MANIFEST_UNKNOWN")
    assert tags(hc, repo) == ["v1"]
    assert hc.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 200

    # The server keeps serving.
    assert hc.get("/v2/").status_code == 200


# -- manifests --------------------------------------------------------------------------------------------------


def test_hostile_manifests_are_rejected_and_store_nothing(hc: httpx.Client) -> None:
    repo = unique_name("hostile")
    image = push_image(hc, repo, "v1")
    doc = json.loads(image.manifest)
    put_headers = {"Content-Type": OCI_MANIFEST}

    # 10 MiB: too large, refused before it is stored (sent with and without a Content-Length).
    huge = canonical({**doc, "annotations": {"pad": "x" * (10 * MiB)}})
    expect(hc.put(f"/v2/{repo}/manifests/huge", content=huge, headers=put_headers), 413, "SIZE_INVALID")
    chunks = (huge[i : i + MiB] for i in range(0, len(huge), MiB))
    expect(hc.put(f"/v2/{repo}/manifests/huge", content=chunks, headers=put_headers), 413, "SIZE_INVALID")
    expect(hc.get(f"/v2/{repo}/manifests/{sha256(huge)}"), 404, "MANIFEST_UNKNOWN")

    # Not JSON, or JSON that is not a manifest.
    for body in (b"{", b"\x00" * 100, b"null", b"[1,2]", b'{"schemaVersion":2}', b'{"schemaVersion":"2"}' * 1):
        expect(hc.put(f"/v2/{repo}/manifests/junk", content=body, headers=put_headers), 400, "MANIFEST_INVALID")

    # Wrong media types.
    for content_type in ("text/plain", OCI_CONFIG, OCI_LAYER, "application/vnd.oci.image.index.v1+json"):
        response = hc.put(f"/v2/{repo}/manifests/typed", content=image.manifest, headers={"Content-Type": content_type})
        expect(response, 400, "MANIFEST_INVALID")
    untyped = canonical({k: v for k, v in doc.items() if k != "mediaType"})
    expect(
        hc.put(f"/v2/{repo}/manifests/typed", content=untyped, headers={"Content-Type": "text/plain"}),
        400,
        "MANIFEST_INVALID",
    )
    not_a_manifest = canonical({**doc, "mediaType": OCI_CONFIG})
    response = hc.put(f"/v2/{repo}/manifests/typed", content=not_a_manifest, headers={"Content-Type": OCI_CONFIG})
    expect(response, 400, "MANIFEST_INVALID")

    # A digest reference that does not match the body.
    other = canonical({**doc, "annotations": {"a": "b"}})
    expect(
        hc.put(f"/v2/{repo}/manifests/{sha256(other)}", content=image.manifest, headers=put_headers),
        400,
        "DIGEST_INVALID",
    )
    expect(hc.put(f"/v2/{repo}/manifests/{image.digest}", content=other, headers=put_headers), 400, "DIGEST_INVALID")

    # A descriptor with a bogus digest or size inside the manifest.
    for layer in (
        {"mediaType": OCI_LAYER, "digest": "sha256:xyz", "size": 1},
        {"mediaType": OCI_LAYER, "digest": "md5:d41d8cd98f00b204e9800998ecf8427e", "size": 1},
        {**descriptor(OCI_LAYER, b"x"), "size": -1},
        {**descriptor(OCI_LAYER, b"x"), "size": "1"},
        "not a descriptor",
    ):
        body = canonical({**doc, "layers": [layer]})
        expect(hc.put(f"/v2/{repo}/manifests/junk", content=body, headers=put_headers), 400, "MANIFEST_INVALID")

    assert tags(hc, repo) == ["v1"]
    for body in (other, untyped, not_a_manifest):
        expect(hc.get(f"/v2/{repo}/manifests/{sha256(body)}"), 404, "MANIFEST_UNKNOWN")
    assert hc.get(f"/v2/{repo}/manifests/v1").content == image.manifest


def test_hostile_headers_and_query_strings(hc: httpx.Client) -> None:
    repo = unique_name("hostile")
    image = push_image(hc, repo, "v1")
    expect(hc.get("/v2/_catalog", params={"n": "-1"}), 400, "PAGINATION_NUMBER_INVALID")
    expect(hc.get("/v2/_catalog", params={"n": "abc"}), 400, "PAGINATION_NUMBER_INVALID")
    expect(hc.get(f"/v2/{repo}/tags/list", params={"n": "9" * 30}), 400, "PAGINATION_NUMBER_INVALID")
    expect(hc.get(f"/v2/{repo}/tags/list", params={"last": "-bad"}), 400, "TAG_INVALID")
    assert hc.get(f"/v2/{repo}/manifests/v1", headers={"Accept": ",,;;;, */*;q=abc"}).status_code in (200, 404)
    response = hc.put(
        f"/v2/{repo}/manifests/v2",
        content=image.manifest,
        headers={"Content-Type": OCI_MANIFEST + "; charset=utf-8; junk=" + "x" * 1000},
    )
    assert response.status_code == 201, response.text
    expect(hc.post(f"/v2/{repo}/blobs/uploads/", params={"mount": sha256(b"x"), "from": "../etc"}), 400, "NAME_INVALID")
    assert "etc" not in " ".join(catalog(hc))


def test_server_is_healthy_after_everything(hostile_server: DockyardServer, hc: httpx.Client) -> None:
    assert hc.get("/v2/").status_code == 200
    assert hc.get("/healthz").status_code == 200
    log = hostile_server.log_path.read_text(errors="replace")
    assert "unhandled error" not in log, hostile_server.log_tail()
    assert "Traceback" not in log, hostile_server.log_tail()
    # No stray objects in the blob store: every one is a committed blob named by its content's digest.
    StorageView(hostile_server).assert_blobs_intact()
