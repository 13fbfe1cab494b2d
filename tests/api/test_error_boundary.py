"""The ``/v2`` error boundary (``dockyard.http.oci.routes.failure_response``) on failures no handler renders itself:
Starlette's routing 405 and 404, and an exception nobody expected. Each is the spec's ``{"errors": [...]}`` body
with its status (none for a ``HEAD``), and an unexpected one is a logged ``UNKNOWN`` 500 that shows the client
nothing of the exception but the request id to report.

Against an in-process server (``secure_server``): the unexpected exception is made by patching a handler's
dependency in this process."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.exceptions import HTTPException

from dockyard.http.oci import listing
from dockyard.http.oci.routes import failure_response
from tests.api.test_errors import assert_error
from tests.support.app_server import AppServer
from tests.support.checks import unique

SECRET = "password=hunter2 in /srv/dockyard/secret.py"


@pytest.fixture
def client(secure_server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secure_server.url, timeout=60) as c:
        yield c


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v2/"),
        ("PUT", "/v2/_catalog"),
        ("POST", "/v2/{repo}/manifests/latest"),
        ("PATCH", "/v2/{repo}/tags/list"),
        ("GET", "/v2/{repo}/blobs/uploads/"),  # uploads start with a POST
    ],
)
def test_a_method_the_endpoint_does_not_take_is_405_unsupported(client: httpx.Client, method: str, path: str) -> None:
    url = path.format(repo=f"{unique('ns')}/app")
    response = client.request(method, url, content=b"{}")
    entry = assert_error(response, 405, "UNSUPPORTED")
    assert (entry["message"], entry["detail"]) == ("method not allowed on this endpoint", {})
    allowed = {m.strip() for m in response.headers["allow"].split(",")}  # RFC 9110 §15.5.6: what it does take
    assert method not in allowed
    assert allowed & {"GET", "POST"}


def test_a_head_the_endpoint_does_not_take_is_405_without_a_body(client: httpx.Client) -> None:
    url = f"/v2/{unique('ns')}/app/blobs/uploads/"
    error = client.get(url)
    assert_error(error, 405, "UNSUPPORTED")
    head = client.head(url)
    assert head.status_code == 405
    assert head.content == b""
    assert head.headers["content-length"] == str(len(error.content))  # how long the error body would have been


@pytest.mark.parametrize(
    "path",
    [
        "/v2/_nothing",
        "/v2/{repo}",
        "/v2/{repo}/manifests",
        "/v2/{repo}/blobs/uploads/{upload}/extra",
        "/v2/{repo}/nonsense/latest",
    ],
)
def test_a_path_no_endpoint_serves_is_404_unsupported_naming_the_path(client: httpx.Client, path: str) -> None:
    url = path.format(repo=f"{unique('ns')}/app", upload="0" * 32)
    entry = assert_error(client.get(url), 404, "UNSUPPORTED")
    assert (entry["message"], entry["detail"]) == ("no such endpoint", {"path": url})


def test_a_404_names_at_most_200_characters_of_the_path_and_a_head_gets_no_body(client: httpx.Client) -> None:
    url = f"/v2/{'a' * 300}/nonsense"
    error = client.get(url)
    entry = assert_error(error, 404, "UNSUPPORTED")
    assert entry["detail"] == {"path": url[:200]}
    head = client.head(url)
    assert (head.status_code, head.content) == (404, b"")
    assert head.headers["content-type"].split(";")[0] == "application/json"
    assert head.headers["content-length"] == str(len(error.content))


def test_an_unexpected_exception_is_a_logged_500_unknown_without_its_details(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    failure = RuntimeError(SECRET)

    def broken_guard(request: object) -> object:
        raise failure

    with monkeypatch.context() as patch, caplog.at_level(logging.ERROR, logger="dockyard.http"):
        patch.setattr(listing, "guard", broken_guard)  # /v2/ asks the guard first
        response = client.get("/v2/", headers={"X-Request-Id": "report-me-42"})
        generated = client.get("/v2/")
        head = client.head("/v2/", headers={"X-Request-Id": "report-me-42"})

    assert_error(response, 500, "UNKNOWN")
    assert response.json() == {
        "errors": [{"code": "UNKNOWN", "message": "internal server error", "detail": {"request_id": "report-me-42"}}]
    }
    assert response.headers["x-request-id"] == "report-me-42"
    assert response.headers["x-content-type-options"] == "nosniff"
    for leak in ("hunter2", "secret.py", "RuntimeError", "Traceback", "broken_guard"):
        assert leak not in response.text
        assert leak not in json.dumps(dict(response.headers))
    # Without an id of the client's, the one the server made is both in the body and on the response.
    assert_error(generated, 500, "UNKNOWN")
    assert generated.json()["errors"][0]["detail"] == {"request_id": generated.headers["x-request-id"]}
    assert generated.headers["x-request-id"] != "report-me-42"
    # HEAD: the same status, no body.
    assert (head.status_code, head.content) == (500, b"")
    assert head.headers["content-length"] == str(len(response.content))
    # The operator's log has the whole exception, under the id the client saw.
    logged = [r for r in caplog.records if r.name == "dockyard.http" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in logged] == [
        "unhandled error (request report-me-42)",
        f"unhandled error (request {generated.headers['x-request-id']})",
        "unhandled error (request report-me-42)",
    ]
    assert all(r.exc_info is not None and r.exc_info[1] is failure for r in logged)

    # Nothing of it outlives the request: with the guard back, /v2/ challenges an anonymous caller as always.
    assert_error(client.get("/v2/"), 401, "UNAUTHORIZED")


@pytest.mark.parametrize(("status", "detail"), [(400, "malformed multipart body"), (413, "too large")])
def test_any_other_starlette_http_error_keeps_its_status_and_detail(status: int, detail: str) -> None:
    """Starlette raises ``HTTPException`` for other statuses too (a form it cannot parse): rendered the same way."""
    scope = {"type": "http", "method": "GET", "path": "/v2/x/y", "state": {"request_id": "r1"}}
    response = failure_response(HTTPException(status, detail), scope)
    assert response.status_code == status
    assert json.loads(bytes(response.body)) == {"errors": [{"code": "UNSUPPORTED", "message": detail, "detail": {}}]}
    head = failure_response(HTTPException(status, detail), {**scope, "method": "HEAD"})
    assert (head.status_code, bytes(head.body)) == (status, b"")
    assert head.headers["content-length"] == str(len(response.body))
