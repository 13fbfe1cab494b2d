"""Blob GETs on an object store configured with ``redirect=true``: the registry answers 307 to a presigned URL
(whole blob and range alike, with the blob's headers) and HEAD is answered by the registry itself."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.oci import push_blob, unique_name
from tests.support.s3 import shared_moto_server

# The server configures its own storage (S3 on moto with redirects): one pass (the embedded one) covers it.
pytestmark = pytest.mark.embedded_only


@pytest.fixture(scope="module")
def redirecting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    moto = shared_moto_server()
    url = moto.storage_url(moto.make_bucket(), "blobs-here", redirect="true")
    srv = AppServer(Path(tmp_path_factory.mktemp("redirect")) / "data", env={**moto.env, "DOCKYARD_STORAGE_URL": url})
    srv.start()
    yield srv
    srv.stop()


def test_blob_get_redirects_to_a_presigned_url(redirecting: AppServer) -> None:
    repo = unique_name()
    data = secrets.token_bytes(5000)
    with httpx.Client(base_url=redirecting.url, timeout=60) as client:
        digest = push_blob(client, repo, data)
        whole = client.get(f"/v2/{repo}/blobs/{digest}")
        assert whole.status_code == 307, whole.text
        assert whole.headers["docker-content-digest"] == digest
        assert "X-Amz-Signature=" in whole.headers["location"]
        assert httpx.get(whole.headers["location"], timeout=60).content == data

        ranged = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=10-99"})
        assert ranged.status_code == 307, ranged.text
        followed = httpx.get(ranged.headers["location"], headers={"Range": "bytes=10-99"}, timeout=60)
        assert (followed.status_code, followed.content) == (206, data[10:100])

        head = client.head(f"/v2/{repo}/blobs/{digest}")
        assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))
        assert client.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True).content == data
