"""Blob uploads over HTTP: sessions, chunked and streamed PATCH, status, cancel, mount, sha512."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx

from dockyard.core.holders import MACHINE
from tests.support.holders import dead_holder
from tests.support.oci import error_codes, push_blob, sha256, sha512, unique_name
from tests.support.server import DockyardServer


def start(client: httpx.Client, repo: str, **params: str) -> httpx.Response:
    response = client.post(f"/v2/{repo}/blobs/uploads/", params=params)
    assert response.status_code == 202, response.text
    assert response.headers["docker-upload-uuid"]
    assert response.headers["oci-chunk-min-length"] == str(1024 * 1024)
    assert response.headers["location"].startswith(f"/v2/{repo}/blobs/uploads/")
    return response


def test_post_then_put_monolithic(client: httpx.Client) -> None:
    repo = unique_name()
    data = os.urandom(100_000)
    location = start(client, repo).headers["location"]
    response = client.put(
        location, params={"digest": sha256(data)}, content=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/{repo}/blobs/{sha256(data)}"
    assert response.headers["docker-content-digest"] == sha256(data)
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_chunked_upload_with_content_range(client: httpx.Client) -> None:
    repo = unique_name()
    data = os.urandom(300_000)
    location = start(client, repo).headers["location"]
    for offset in range(0, len(data), 100_000):
        chunk = data[offset : offset + 100_000]
        response = client.patch(
            location,
            content=chunk,
            headers={
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert response.status_code == 202, response.text
        assert response.headers["range"] == f"0-{offset + len(chunk) - 1}"
        location = response.headers["location"]
    status = client.get(location)
    assert status.status_code == 204
    assert status.headers["range"] == f"0-{len(data) - 1}"
    assert status.headers["docker-upload-uuid"] in location
    done = client.put(location, params={"digest": sha256(data)})
    assert done.status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_out_of_order_chunk_is_416(client: httpx.Client) -> None:
    repo = unique_name()
    location = start(client, repo).headers["location"]
    assert client.patch(location, content=b"abc", headers={"Content-Range": "0-2"}).status_code == 202
    response = client.patch(location, content=b"xyz", headers={"Content-Range": "5-7"})
    assert response.status_code == 416
    assert response.headers["range"] == "0-2"
    assert client.get(location).headers["range"] == "0-2"


def test_streamed_patch_and_last_chunk_in_put(client: httpx.Client) -> None:
    repo = unique_name()
    data = os.urandom(50_000)
    location = start(client, repo).headers["location"]

    def stream() -> Iterator[bytes]:
        for i in range(0, 40_000, 7_000):
            yield data[i : min(i + 7_000, 40_000)]

    response = client.patch(location, content=stream())  # chunked transfer encoding, no Content-Range
    assert response.status_code == 202
    assert response.headers["range"] == "0-39999"
    done = client.put(
        response.headers["location"],
        params={"digest": sha256(data)},
        content=data[40_000:],
        headers={"Content-Range": "40000-49999"},
    )
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_wrong_digest_on_close_is_rejected_and_nothing_visible(client: httpx.Client) -> None:
    repo = unique_name()
    location = start(client, repo).headers["location"]
    wrong = sha256(b"something else")
    response = client.put(location, params={"digest": wrong}, content=b"actual bytes")
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{sha256(b'actual bytes')}").status_code == 404


def test_cancel_frees_the_session(client: httpx.Client) -> None:
    repo = unique_name()
    location = start(client, repo).headers["location"]
    assert client.patch(location, content=b"partial").status_code == 202
    assert client.delete(location).status_code == 204
    response = client.get(location)
    assert response.status_code == 404
    assert error_codes(response) == ["BLOB_UPLOAD_UNKNOWN"]
    assert error_codes(client.patch(location, content=b"more")) == ["BLOB_UPLOAD_UNKNOWN"]


def test_sha512_blob_round_trip(client: httpx.Client) -> None:
    repo = unique_name()
    data = os.urandom(70_000)
    digest = sha512(data)
    location = start(client, repo, **{"digest-algorithm": "sha512"}).headers["location"]
    assert client.patch(location, content=data).status_code == 202
    assert client.put(location, params={"digest": digest}).status_code == 201
    response = client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.content == data
    assert response.headers["docker-content-digest"] == digest
    # Single-POST with a sha512 digest, and a sha256 session closed with a sha512 digest, work too.
    other = os.urandom(1000)
    assert push_blob(client, repo, other, sha512(other)) == sha512(other)
    location = start(client, repo).headers["location"]
    third = os.urandom(3000)
    assert client.put(location, params={"digest": sha512(third)}, content=third).status_code == 201
    assert hashlib.sha512(client.get(f"/v2/{repo}/blobs/{sha512(third)}").content).hexdigest() == sha512(third)[7:]


def test_unknown_digest_algorithm_is_rejected(client: httpx.Client) -> None:
    response = client.post(f"/v2/{unique_name()}/blobs/uploads/", params={"digest-algorithm": "md5"})
    assert response.status_code == 400
    assert error_codes(response) == ["DIGEST_INVALID"]


def test_cross_repository_mount(client: httpx.Client) -> None:
    source, target = unique_name(), unique_name()
    data = os.urandom(2000)
    digest = push_blob(client, source, data)
    response = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/{target}/blobs/{digest}"
    assert response.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data


def test_mount_without_from_or_unknown_blob_starts_a_session(client: httpx.Client) -> None:
    source, target = unique_name(), unique_name()
    digest = push_blob(client, source, b"mountable")
    no_from = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest})
    assert no_from.status_code == 202
    assert no_from.headers["location"].startswith(f"/v2/{target}/blobs/uploads/")
    unknown = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": sha256(b"nope"), "from": source})
    assert unknown.status_code == 202
    assert client.head(f"/v2/{target}/blobs/{digest}").status_code == 404


def test_blob_head_range_and_delete(client: httpx.Client) -> None:
    repo = unique_name()
    data = bytes(range(256)) * 40
    digest = push_blob(client, repo, data)
    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["docker-content-digest"] == digest
    ranged = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206
    assert ranged.content == data[10:20]
    assert ranged.headers["content-range"] == f"bytes 10-19/{len(data)}"
    suffix = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert suffix.content == data[-5:]
    bad = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={len(data)}-"})
    assert bad.status_code == 416
    assert bad.headers["content-range"] == f"bytes */{len(data)}"
    assert client.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    assert error_codes(client.delete(f"/v2/{repo}/blobs/{digest}")) == ["BLOB_UNKNOWN"]


def test_a_lease_held_by_a_dead_process_is_taken_at_once_a_live_ones_is_not(
    server: DockyardServer, client: httpx.Client
) -> None:
    """A request's lease on an upload names its process (``core.holders``): after a crash, a process of this machine
    that is gone is not waited for; a live holder (here: the test process itself) still gets 409."""
    repo = unique_name()
    data = os.urandom(200_000)
    location = start(client, repo).headers["location"]
    upload_id = location.rsplit("/", 1)[1]
    assert client.patch(location, content=data[:100_000]).status_code == 202
    until = datetime.now(UTC) + timedelta(hours=1)
    hold = "UPDATE uploads SET lease_token = :token, lease_until = :until WHERE id = :id"

    live = f"-:{MACHINE}:{os.getpid()}:00000000"  # a process of this machine that is running
    server.execute_sql(hold, token=live, until=until, id=upload_id)
    busy = client.patch(location, content=data[100_000:], headers={"Content-Range": f"100000-{len(data) - 1}"})
    assert busy.status_code == 409, busy.text
    assert error_codes(busy) == ["BLOB_UPLOAD_INVALID"]

    server.execute_sql(hold, token="-:" + dead_holder().split(":", 1)[1], until=until, id=upload_id)
    taken = client.patch(location, content=data[100_000:], headers={"Content-Range": f"100000-{len(data) - 1}"})
    assert taken.status_code == 202, taken.text
    assert client.put(location, params={"digest": sha256(data)}).status_code == 201
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
