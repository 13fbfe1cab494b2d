"""Every OCI error code the registry emits: exact HTTP status, exact code and the spec's JSON error body."""

from __future__ import annotations

import json
import secrets
import socket
from typing import Any

import httpx
import pytest

from tests.support.oci import (
    DOCKER_MANIFEST,
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
MANIFEST_LIMIT = 4 * MiB
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is ``status`` with a spec-shaped body whose first error is ``code``; return that entry."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert list(body) == ["errors"], body
    assert isinstance(body["errors"], list)
    assert body["errors"], body
    entry: dict[str, Any] = body["errors"][0]
    assert {"code", "message", "detail"} <= set(entry), entry
    assert entry["code"] == code, entry
    assert isinstance(entry["message"], str)
    assert entry["message"]
    for other in body["errors"]:
        assert other["code"].replace("_", "").isalpha()
        assert other["code"].isupper()
    return entry


def raw_head(server: DockyardServer, target: str) -> tuple[int, dict[str, str], bytes]:
    """HEAD over a raw socket with ``Connection: close``: everything after the header block is a body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"HEAD {target} HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, rest


def start_upload(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return response.headers["location"]


def manifest_for(config: bytes, layers: list[dict[str, Any]], **extra: Any) -> bytes:
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": layers,
            **extra,
        }
    )


def padded_manifest(client: httpx.Client, repo: str, total: int) -> bytes:
    """A valid manifest (its blobs pushed) padded with an annotation to exactly ``total`` bytes."""
    config = canonical({"architecture": "amd64", "os": "linux", "padded": total})
    layer = f"padded-layer-{total}".encode()
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    empty = manifest_for(config, [descriptor(OCI_LAYER, layer)], annotations={"pad": ""})
    body = manifest_for(config, [descriptor(OCI_LAYER, layer)], annotations={"pad": "x" * (total - len(empty))})
    assert len(body) == total
    return body


# -- NAME_INVALID / NAME_UNKNOWN -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Upper/case", "a" * 256, "bad//slashes", "-lead", "trail-", "a/b_"])
def test_name_invalid_is_400(client: httpx.Client, name: str) -> None:
    assert_error(client.get(f"/v2/{name}/tags/list"), 400, "NAME_INVALID")
    assert_error(client.post(f"/v2/{name}/blobs/uploads/"), 400, "NAME_INVALID")
    assert_error(client.get(f"/v2/{name}/manifests/latest"), 400, "NAME_INVALID")


def test_name_unknown_for_tags_list_and_manifest_of_unknown_repository(client: httpx.Client) -> None:
    repo = unique_name("unknown")
    entry = assert_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")
    assert repo in json.dumps(entry["detail"])
    assert_error(client.get(f"/v2/{repo}/manifests/latest"), 404, "NAME_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/{sha256(b'x')}"), 404, "NAME_UNKNOWN")


# -- DIGEST_INVALID ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256:abc", "sha512:" + "a" * 64, "sha256:" + "A" * 64],
)
def test_digest_invalid_for_malformed_digest_strings(client: httpx.Client, bad: str) -> None:
    repo = unique_name()
    push_blob(client, repo, b"something")
    assert_error(client.get(f"/v2/{repo}/blobs/{bad}"), 400, "DIGEST_INVALID")
    assert_error(client.delete(f"/v2/{repo}/blobs/{bad}"), 400, "DIGEST_INVALID")
    assert_error(client.get(f"/v2/{repo}/manifests/{bad}"), 400, "DIGEST_INVALID")
    assert_error(client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": bad}, content=b"x"), 400, "DIGEST_INVALID")


def test_digest_invalid_when_closing_put_digest_does_not_match_content(client: httpx.Client) -> None:
    repo = unique_name()
    location = start_upload(client, repo)
    assert client.patch(location, content=b"hello").status_code == 202
    wrong = sha256(b"not hello")
    entry = assert_error(client.put(location, params={"digest": wrong}), 400, "DIGEST_INVALID")
    assert wrong in json.dumps(entry["detail"])
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{sha256(b'hello')}").status_code == 404
    # Monolithic POST with a wrong digest: same code, nothing stored.
    assert_error(
        client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": wrong}, content=b"other"), 400, "DIGEST_INVALID"
    )
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404


def test_digest_invalid_when_manifest_put_by_digest_does_not_match_body(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, "v1")
    wrong = sha256(image.manifest + b" ")
    response = client.put(
        f"/v2/{repo}/manifests/{wrong}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert_error(response, 400, "DIGEST_INVALID")
    assert client.head(f"/v2/{repo}/manifests/{wrong}").status_code == 404


# -- BLOB_UNKNOWN / BLOB_UPLOAD_UNKNOWN / BLOB_UPLOAD_INVALID ------------------------------------------------------


def test_blob_unknown_is_404(client: httpx.Client, server: DockyardServer) -> None:
    repo = unique_name()
    push_blob(client, repo, b"present")
    missing = sha256(b"missing")
    entry = assert_error(client.get(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    assert missing in json.dumps(entry["detail"])
    assert_error(client.delete(f"/v2/{repo}/blobs/{missing}"), 404, "BLOB_UNKNOWN")
    status, _, body = raw_head(server, f"/v2/{repo}/blobs/{missing}")
    assert (status, body) == (404, b"")


def test_blob_content_lost_from_storage_is_404_not_a_cut_off_200(client: httpx.Client, server: DockyardServer) -> None:
    """A blob whose bytes vanished behind the server's back (a storage accident) answers 404 BLOB_UNKNOWN before
    any byte is sent, whole or ranged, on either driver; the server keeps serving."""
    repo = unique_name()
    lost, kept = secrets.token_bytes(3000), secrets.token_bytes(3000)
    lost_digest, kept_digest = push_blob(client, repo, lost), push_blob(client, repo, kept)
    StorageView(server).lose_blob(lost_digest)
    whole = assert_error(client.get(f"/v2/{repo}/blobs/{lost_digest}"), 404, "BLOB_UNKNOWN")
    ranged = client.get(f"/v2/{repo}/blobs/{lost_digest}", headers={"Range": "bytes=10-99"})
    for entry in (whole, assert_error(ranged, 404, "BLOB_UNKNOWN")):
        assert (entry["message"], entry["detail"]) == ("blob content is missing from storage", {"digest": lost_digest})
    assert client.get(f"/v2/{repo}/blobs/{kept_digest}").content == kept
    assert client.get(f"/v2/{repo}/blobs/{kept_digest}", headers={"Range": "bytes=10-99"}).content == kept[10:100]


@pytest.mark.parametrize("upload_id", ["bogus", "0" * 32, "g" * 32, "f" * 64, "F" * 32])
def test_blob_upload_unknown_for_bogus_ids(client: httpx.Client, upload_id: str) -> None:
    repo = unique_name()
    push_blob(client, repo, b"x")
    url = f"/v2/{repo}/blobs/uploads/{upload_id}"
    assert_error(client.get(url), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(url, content=b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.put(url, params={"digest": sha256(b"abc")}, content=b"abc"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.delete(url), 404, "BLOB_UPLOAD_UNKNOWN")


def test_blob_upload_unknown_after_upload_is_deleted(client: httpx.Client) -> None:
    repo = unique_name()
    location = start_upload(client, repo)
    assert client.patch(location, content=b"abc").status_code == 202
    assert client.delete(location).status_code == 204
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.patch(location, content=b"def"), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.put(location, params={"digest": sha256(b"abc")}), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(client.delete(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert client.head(f"/v2/{repo}/blobs/{sha256(b'abc')}").status_code == 404


def test_blob_upload_invalid_when_content_range_and_length_disagree(client: httpx.Client) -> None:
    repo = unique_name()
    location = start_upload(client, repo)
    response = client.patch(location, content=b"hello", headers={"Content-Range": "0-9"})
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-0"


# -- MANIFEST_UNKNOWN / MANIFEST_INVALID / MANIFEST_BLOB_UNKNOWN ---------------------------------------------------


def test_manifest_unknown_is_404(client: httpx.Client, server: DockyardServer) -> None:
    repo = unique_name()
    push_image(client, repo, "v1")
    entry = assert_error(client.get(f"/v2/{repo}/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    assert "nope" in json.dumps(entry["detail"])
    assert_error(client.get(f"/v2/{repo}/manifests/{sha256(b'nope')}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/manifests/{sha256(b'nope')}"), 404, "MANIFEST_UNKNOWN")
    status, _headers, body = raw_head(server, f"/v2/{repo}/manifests/nope")
    assert (status, body) == (404, b"")


def test_manifest_invalid_json(client: httpx.Client) -> None:
    repo = unique_name()
    push_image(client, repo, "v1")
    for body in (b"{not json", b"", b"[]", b"\xff\xfe", b'"a string"'):
        response = client.put(f"/v2/{repo}/manifests/broken", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert_error(response, 400, "MANIFEST_INVALID")
    assert_error(client.get(f"/v2/{repo}/manifests/broken"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("content_type", [SCHEMA1, "application/vnd.docker.distribution.manifest.v1+prettyjws", ""])
def test_manifest_invalid_schema1_with_a_clear_message(client: httpx.Client, content_type: str) -> None:
    repo = unique_name()
    push_image(client, repo, "v1")
    body = json.dumps(
        {"schemaVersion": 1, "name": repo, "tag": "old", "architecture": "amd64", "fsLayers": [], "history": []}
    ).encode()
    response = client.put(f"/v2/{repo}/manifests/old", content=body, headers={"Content-Type": content_type})
    entry = assert_error(response, 400, "MANIFEST_INVALID")
    assert "schema 1" in entry["message"].lower() or "schema1" in entry["message"].lower(), entry


def test_manifest_invalid_when_media_type_and_content_type_disagree(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, "v1")
    response = client.put(f"/v2/{repo}/manifests/v2", content=image.manifest, headers={"Content-Type": DOCKER_MANIFEST})
    entry = assert_error(response, 400, "MANIFEST_INVALID")
    assert "mediaType" in entry["message"] or "Content-Type" in entry["message"]
    assert_error(client.get(f"/v2/{repo}/manifests/v2"), 404, "MANIFEST_UNKNOWN")


def test_manifest_blob_unknown_names_the_missing_digest(client: httpx.Client) -> None:
    repo = unique_name()
    config = canonical({"architecture": "amd64", "os": "linux", "kind": "missing-layer"})
    push_blob(client, repo, config)
    missing_layer = b"never pushed layer"
    body = manifest_for(config, [descriptor(OCI_LAYER, missing_layer)])
    response = client.put(f"/v2/{repo}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
    entry = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert sha256(missing_layer) in json.dumps(entry["detail"])
    assert_error(client.get(f"/v2/{repo}/manifests/v1"), 404, "MANIFEST_UNKNOWN")

    # A missing config is reported the same way.
    missing_config = b'{"missing":"config"}'
    layer = b"a pushed layer"
    push_blob(client, repo, layer)
    body = manifest_for(missing_config, [descriptor(OCI_LAYER, layer)])
    response = client.put(f"/v2/{repo}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
    entry = assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
    assert sha256(missing_config) in json.dumps(entry["detail"])


def test_manifest_whose_subject_does_not_exist_yet_is_accepted(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, None)
    doc = json.loads(image.manifest)
    subject = descriptor(OCI_MANIFEST, b'{"not":"pushed yet"}')
    doc["subject"] = subject
    body = canonical(doc)
    response = client.put(f"/v2/{repo}/manifests/{sha256(body)}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    assert response.headers["oci-subject"] == subject["digest"]
    assert client.get(f"/v2/{repo}/manifests/{sha256(body)}").content == body


@pytest.mark.parametrize("media_type", [NONDISTRIBUTABLE, OCI_LAYER])
def test_foreign_layer_with_urls_is_accepted_without_being_pushed(client: httpx.Client, media_type: str) -> None:
    repo = unique_name()
    image = push_image(client, repo, None)
    doc = json.loads(image.manifest)
    foreign = descriptor(media_type, b"foreign layer bytes", urls=["https://example.com/layer.tar.gz"])
    doc["layers"].append(foreign)
    body = canonical(doc)
    response = client.put(f"/v2/{repo}/manifests/foreign", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{repo}/manifests/foreign").content == body
    assert client.head(f"/v2/{repo}/blobs/{foreign['digest']}").status_code == 404


# -- TAG_INVALID / UNSUPPORTED / SIZE_INVALID ----------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["-leading-dash", ".leading-dot", "a" * 129, "has+plus", "sp%20ace"])
def test_tag_invalid_is_400(client: httpx.Client, tag: str) -> None:
    repo = unique_name()
    image = push_image(client, repo, "v1")
    response = client.put(f"/v2/{repo}/manifests/{tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert_error(response, 400, "TAG_INVALID")
    # A tag that cannot exist names no manifest (conformance v1.1.1, as distribution).
    assert_error(client.get(f"/v2/{repo}/manifests/{tag}"), 404, "MANIFEST_UNKNOWN")
    response = client.put(
        f"/v2/{repo}/manifests/{image.digest}",
        params={"tag": tag},
        content=image.manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert_error(response, 400, "TAG_INVALID")
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/{repo}/manifests/v1"),
        ("PATCH", "/v2/{repo}/manifests/v1"),
        ("PUT", "/v2/{repo}/tags/list"),
        ("DELETE", "/v2/_catalog"),
        ("PUT", "/v2/{repo}/blobs/{digest}"),
        ("POST", "/v2/{repo}/blobs/{digest}"),
        ("DELETE", "/v2/"),
    ],
)
def test_unsupported_method_is_405(client: httpx.Client, method: str, path: str) -> None:
    repo = unique_name()
    digest = push_blob(client, repo, b"blob")
    response = client.request(method, path.format(repo=repo, digest=digest), content=b"{}")
    assert_error(response, 405, "UNSUPPORTED")


def test_manifest_over_4_mib_is_413_size_invalid(client: httpx.Client) -> None:
    repo = unique_name()
    body = padded_manifest(client, repo, MANIFEST_LIMIT + 1)
    response = client.put(f"/v2/{repo}/manifests/big", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert_error(response, 413, "SIZE_INVALID")
    assert_error(client.get(f"/v2/{repo}/manifests/big"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/{sha256(body)}"), 404, "MANIFEST_UNKNOWN")


@pytest.mark.parametrize("size", [MANIFEST_LIMIT - 1, MANIFEST_LIMIT])
def test_manifest_up_to_exactly_4_mib_is_accepted(client: httpx.Client, size: int) -> None:
    repo = unique_name()
    body = padded_manifest(client, repo, size)
    response = client.put(f"/v2/{repo}/manifests/big", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == sha256(body)
    fetched = client.get(f"/v2/{repo}/manifests/big", headers={"Accept": OCI_MANIFEST})
    assert fetched.status_code == 200
    assert len(fetched.content) == size
    assert fetched.content == body


# -- RANGE_INVALID -------------------------------------------------------------------------------------------------


def test_out_of_order_patch_is_416_with_current_range(client: httpx.Client) -> None:
    repo = unique_name()
    location = start_upload(client, repo)
    # Before anything is written, a chunk that does not start at 0 is out of order.
    response = client.patch(location, content=b"hello", headers={"Content-Range": "5-9"})
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["range"] == "0-0"

    assert client.patch(location, content=b"hello", headers={"Content-Range": "0-4"}).status_code == 202
    for content_range in ("10-14", "0-4", "4-8", "6-10"):
        response = client.patch(location, content=b"world", headers={"Content-Range": content_range})
        assert_error(response, 416, "RANGE_INVALID")
        assert response.headers["range"] == "0-4"
    # The final chunk of the closing PUT is checked the same way.
    response = client.put(
        location, params={"digest": sha256(b"helloworld")}, content=b"world", headers={"Content-Range": "6-10"}
    )
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["range"] == "0-4"

    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == "0-4"
    assert client.patch(location, content=b"world", headers={"Content-Range": "5-9"}).status_code == 202
    assert client.put(location, params={"digest": sha256(b"helloworld")}).status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(b'helloworld')}").content == b"helloworld"


@pytest.mark.parametrize("range_header", ["bytes=999999-", "bytes=100-200", "bytes=abc", "bytes=5-2"])
def test_unsatisfiable_blob_range_is_416(client: httpx.Client, server: DockyardServer, range_header: str) -> None:
    repo = unique_name()
    data = b"0123456789" * 5
    digest = push_blob(client, repo, data)
    response = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": range_header})
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["content-range"] == f"bytes */{len(data)}"
    head = client.head(f"/v2/{repo}/blobs/{digest}", headers={"Range": range_header})
    assert head.status_code == 416
    assert client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=2-4"}).content == b"234"


# -- HEAD ------------------------------------------------------------------------------------------------------


def test_head_errors_have_no_body(client: httpx.Client, server: DockyardServer) -> None:
    repo = unique_name()
    digest = push_blob(client, repo, b"head me")
    targets = {
        f"/v2/{repo}/blobs/{sha256(b'absent')}": 404,
        f"/v2/{repo}/manifests/absent": 404,
        f"/v2/{repo}/manifests/{sha256(b'absent')}": 404,
        f"/v2/{unique_name('nohead')}/manifests/latest": 404,
        f"/v2/{repo}/blobs/sha256:xyz": 400,
        f"/v2/Upper/blobs/{digest}": 400,
        f"/v2/{repo}/manifests/-bad-tag": 404,  # a tag that cannot exist names no manifest
        f"/v2/{repo}/manifests/sha256:xyz": 400,
    }
    for target, expected in targets.items():
        status, _headers, body = raw_head(server, target)
        assert status == expected, target
        assert body == b"", (target, body)
    # Also via httpx: the status and headers are those of the GET error.
    response = client.head(f"/v2/{repo}/blobs/{sha256(b'absent')}")
    assert response.status_code == 404
    assert response.content == b""
