"""Resource limits a client cannot push past: upload sessions per account and repository, idle sessions, header
and body sizes, JSON nesting, and the private modes of the data directory and its files.

Oversized requests go over raw sockets: what matters is that the server answers before the client has sent the
whole body (it never reads it whole), and that it keeps serving afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.oci import OCI_MANIFEST, error_codes, push_blob, push_image, sha256, unique_name
from tests.support.server import DockyardServer

MiB = 1024 * 1024
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path_factory.mktemp("limits") / "data", secure=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def hub(secure: DockyardServer) -> Iterator[HubAdmin]:
    admin = HubAdmin(secure)
    yield admin
    admin.close()


def _as(server: DockyardServer, user: str, password: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60, auth=(user, password))


def _start(client: httpx.Client, repo: str) -> httpx.Response:
    return client.post(f"/v2/{repo}/blobs/uploads/")


# -- upload sessions ------------------------------------------------------------------------------------------------


def test_open_sessions_per_repository_are_capped(secure: DockyardServer, hub: HubAdmin) -> None:
    user, password = hub.user("cap")
    with _as(secure, user, password) as client:
        repo = f"{user}/busy"
        locations = []
        for _ in range(20):
            response = _start(client, repo)
            assert response.status_code == 202, response.text
            locations.append(response.headers["location"])
        refused = _start(client, repo)
        assert refused.status_code == 429, refused.text
        assert error_codes(refused) == ["TOOMANYREQUESTS"]
        # Another repository of the same account is not affected…
        assert _start(client, f"{user}/other").status_code == 202
        # …and finishing or cancelling a session makes room again.
        assert client.delete(locations.pop()).status_code == 204
        assert _start(client, repo).status_code == 202
        data = os.urandom(1000)
        assert client.put(locations.pop(), params={"digest": sha256(data)}, content=data).status_code == 201
        assert _start(client, repo).status_code == 202
        assert _start(client, repo).status_code == 429


def test_open_sessions_per_account_are_capped(secure: DockyardServer, hub: HubAdmin) -> None:
    user, password = hub.user("cap")
    with _as(secure, user, password) as client:
        for n in range(100):
            response = _start(client, f"{user}/repo{n // 20}")
            assert response.status_code == 202, (n, response.text)
        refused = _start(client, f"{user}/another")
        assert refused.status_code == 429, refused.text
        assert error_codes(refused) == ["TOOMANYREQUESTS"]
    other, other_password = hub.user("cap")
    with _as(secure, other, other_password) as client:
        assert _start(client, f"{other}/repo").status_code == 202


def test_opening_a_session_creates_no_repository(secure: DockyardServer, hub: HubAdmin) -> None:
    user, password = hub.user("lazy")
    repo = f"{user}/notyet"
    with _as(secure, user, password) as client:
        location = _start(client, repo).headers["location"]
        assert hub.client.get(f"/api/v2/namespaces/{user}/repositories/notyet").status_code == 404
        assert repo not in hub.client.get(f"/api/v2/namespaces/{user}/repositories").text
        with _as(secure, "admin", secure.ADMIN_PASSWORD) as admin:
            assert repo not in admin.get("/v2/_catalog").text
        # The session works although its repository does not exist yet; the repository appears with the blob.
        assert client.get(location).status_code == 204
        data = os.urandom(2000)
        assert client.patch(location, content=data).status_code == 202
        assert hub.client.get(f"/api/v2/namespaces/{user}/repositories/notyet").status_code == 404
        done = client.put(location, params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
        assert hub.client.get(f"/api/v2/namespaces/{user}/repositories/notyet").status_code == 200


def test_idle_sessions_expire(tmp_path: Path) -> None:
    srv = DockyardServer(tmp_path / "data", env={"DOCKYARD_UPLOAD_EXPIRY_SECONDS": "2"})
    srv.start()
    try:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            location = _start(client, unique_name()).headers["location"]
            assert client.get(location).status_code == 204
            deadline = time.monotonic() + 30
            while client.get(location).status_code != 404:
                assert time.monotonic() < deadline, "the idle upload session was never expired"
                time.sleep(0.2)
            assert error_codes(client.get(location)) == ["BLOB_UPLOAD_UNKNOWN"]
    finally:
        srv.stop()


def test_blob_routes_take_bodies_over_the_request_limit(client: httpx.Client) -> None:
    repo = unique_name()
    data = os.urandom(3 * MiB)
    location = _start(client, repo).headers["location"]
    patched = client.patch(location, content=data[: 2 * MiB])
    assert patched.status_code == 202, patched.text
    done = client.put(patched.headers["location"], params={"digest": sha256(data)}, content=data[2 * MiB :])
    assert done.status_code == 201, done.text
    push_blob(client, repo, os.urandom(2 * MiB))


# -- header and body sizes ------------------------------------------------------------------------------------------


def _exchange(port: int, head: bytes, body: Iterable[bytes] = ()) -> tuple[http.client.HTTPResponse, int]:
    """Send ``head`` then body chunks until the server answers (or stops reading); return its response and how
    many body bytes went out."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    try:
        sock.settimeout(10)
        try:
            sock.sendall(head)
            for chunk in body:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        sock.settimeout(30)
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        return response, sent
    finally:
        sock.close()


def _post_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _blocks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    block = b"[" * size
    for _ in range(total // size):
        yield block


def _chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for block in _blocks(total, size):
        yield f"{len(block):x}\r\n".encode() + block + b"\r\n"
    yield b"0\r\n\r\n"


def test_a_huge_header_is_refused_and_the_server_keeps_serving(server: DockyardServer) -> None:
    head = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (4 * MiB) + b"\r\n\r\n"
    response, _ = _exchange(server.port, head)
    assert response.status == 431
    # A head that arrives in one piece is checked once it is complete.
    many = b"GET /api/v2/users/admin HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (b"X-Many: " + b"b" * 1000 + b"\r\n") * 100
    response, _ = _exchange(server.port, many + b"\r\n")
    assert response.status == 431
    assert response.getheader("content-type", "").startswith(PROBLEM)
    assert httpx.get(f"{server.url}/v2/", timeout=10).status_code == 200


def test_an_idle_connection_is_kept_open_for_the_keep_alive_time(tmp_path: Path) -> None:
    srv = AppServer(tmp_path / "data", embedded=True, env={"DOCKYARD_KEEP_ALIVE_SECONDS": "2"})
    srv.start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            conn = http.client.HTTPConnection("127.0.0.1", srv.port)
            conn.sock = sock
            for _ in range(2):  # the second request goes over the same connection, after a pause
                conn.request("GET", "/v2/")
                response = conn.getresponse()
                response.read()
                assert response.status == 200
                answered = time.monotonic()
                time.sleep(0.5)
            # Then the server closes the idle connection, once its keep-alive time has passed.
            readable, _, _ = select.select([sock], [], [], 15)
            assert readable, "the server kept the idle connection open"
            assert sock.recv(1) == b""
            assert 1.5 <= time.monotonic() - answered < 4.5  # 2 s, not uvicorn's 5 s
    finally:
        srv.stop()


def test_api_body_over_the_limit_is_refused_by_its_length(server: DockyardServer) -> None:
    head = _post_head("/api/v2/auth/token", {"Content-Type": "application/json", "Content-Length": str(20 * MiB)})
    response, sent = _exchange(server.port, head, _blocks(20 * MiB))
    assert response.status == 413
    assert response.getheader("content-type", "").startswith(PROBLEM)
    assert sent < 20 * MiB
    assert httpx.get(f"{server.url}/v2/", timeout=10).status_code == 200


def test_api_body_over_the_limit_is_refused_while_streaming(server: DockyardServer) -> None:
    head = _post_head("/api/v2/auth/token", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    response, sent = _exchange(server.port, head, _chunked(20 * MiB))
    assert response.status == 413
    assert response.getheader("content-type", "").startswith(PROBLEM)
    assert sent < 20 * MiB
    assert httpx.get(f"{server.url}/v2/", timeout=10).status_code == 200


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_token_form_over_the_limit_is_refused(server: DockyardServer, framing: str) -> None:
    size = 4 * MiB
    form = b"grant_type=password&client_id=x&password=" + b"p" * size
    if framing == "length":
        head = _post_head(
            "/v2/token",
            {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(len(form))},
        )
        body: Iterable[bytes] = (form[i : i + 65536] for i in range(0, len(form), 65536))
    else:
        head = _post_head(
            "/v2/token", {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked"}
        )
        body = _chunked(size)
    response, sent = _exchange(server.port, head, body)
    assert response.status == 413
    assert sent < size


def test_a_small_oversized_form_is_413_too(client: httpx.Client) -> None:
    response = client.post("/v2/token", data={"grant_type": "password", "client_id": "x", "password": "p" * 100_000})
    assert response.status_code == 413
    assert error_codes(response) == ["SIZE_INVALID"]


# -- JSON nesting ---------------------------------------------------------------------------------------------------


def test_a_deeply_nested_manifest_is_invalid(client: httpx.Client) -> None:
    repo = unique_name()
    for depth in (100_000, 1000, 200):
        body = b"[" * depth + b"]" * depth
        response = client.put(f"/v2/{repo}/manifests/deep", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 400, (depth, response.text)
        assert error_codes(response) == ["MANIFEST_INVALID"]
    nested = b'{"schemaVersion":2,"annotations":' + b'{"a":' * 300 + b'"x"' + b"}" * 300 + b"}"
    response = client.put(f"/v2/{repo}/manifests/deep", content=nested, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_INVALID"]
    push_image(client, repo, "fine")


def test_deeply_nested_api_json_is_a_422_problem(server: DockyardServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for depth in (100_000, 2000, 300):
            body = b'{"identifier":' + b"[" * depth + b"]" * depth + b',"secret":"x"}'
            response = client.post("/api/v2/auth/token", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 422, (depth, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert "Traceback" not in response.text


# -- file modes -----------------------------------------------------------------------------------------------------


@pytest.mark.embedded_only
def test_data_directory_and_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = DockyardServer(data_dir, embedded=True, secure=True)
    srv.start()
    try:
        with _as(srv, "admin", srv.ADMIN_PASSWORD) as client:
            push_image(client, "admin/private")
            _start(client, "admin/private")
    finally:
        srv.stop()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    checked = 0
    for path in [data_dir, *data_dir.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, (str(path), oct(mode))
        checked += 1
    names = {p.name for p in data_dir.rglob("*")}
    assert {"dockyard.db", "secret.key", "storage", "blobs"} <= names
    assert checked > 10
    assert "readable by others" not in srv.log_path.read_text()


@pytest.mark.embedded_only
def test_a_data_directory_others_can_read_is_warned_about(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    srv = DockyardServer(data_dir, embedded=True)
    srv.start()
    try:
        assert httpx.get(f"{srv.url}/v2/", timeout=10).status_code == 200
    finally:
        srv.stop()
    log = srv.log_path.read_text()
    assert "readable by others" in log, log[-2000:]
    assert json.dumps(str(data_dir.resolve()))[1:-1] in log or str(data_dir) in log
