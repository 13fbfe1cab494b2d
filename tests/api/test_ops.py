"""Operational endpoints: liveness, readiness (DB and storage), Prometheus metrics, request ids."""

from __future__ import annotations

import httpx

from dockyard.http.web.security import CONTENT_SECURITY_POLICY as PAGE_POLICY
from tests.support.oci import push_image, unique_name
from tests.support.server import DockyardServer
from tests.support.storage_view import StorageView


def test_healthz(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics_count_requests_and_bytes(client: httpx.Client) -> None:
    repo = unique_name()
    push_image(client, repo, "v1")
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
    text = client.get("/metrics").text
    assert 'dockyard_http_requests_total{method="GET",route="manifests",status="200"}' in text
    assert 'dockyard_http_requests_total{method="PUT",route="manifests",status="201"}' in text
    assert "dockyard_http_request_duration_seconds_bucket" in text
    assert 'dockyard_http_received_bytes_total{route="uploads"}' in text
    assert 'dockyard_http_sent_bytes_total{route="manifests"}' in text
    assert "dockyard_uploads_in_progress 0.0" in text


def test_request_id_is_echoed_or_generated(client: httpx.Client) -> None:
    assert client.get("/v2/", headers={"X-Request-ID": "abc123"}).headers["x-request-id"] == "abc123"
    generated = client.get("/v2/").headers["x-request-id"]
    assert len(generated) == 16


def test_readyz_fails_when_storage_is_unusable(fresh_server: DockyardServer) -> None:
    url = fresh_server.url
    assert httpx.get(f"{url}/readyz").status_code == 200
    view = StorageView(fresh_server)
    view.break_storage()
    response = httpx.get(f"{url}/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == {"storage": "StorageError"}
    view.repair_storage()
    assert httpx.get(f"{url}/readyz").status_code == 200


def test_security_headers_on_every_surface(client: httpx.Client) -> None:
    """No response may be sniffed into HTML or framed: ``nosniff`` and a deny-all CSP on /v2 (successes, errors
    and HEAD), /v2/token, /api (JSON and problem+json) and the operational endpoints."""
    repo = unique_name()
    push_image(client, repo, "v1")
    responses = [
        client.get("/v2/"),
        client.get(f"/v2/{repo}/manifests/v1"),
        client.head(f"/v2/{repo}/manifests/v1"),
        client.get(f"/v2/{repo}/manifests/missing"),
        client.get(f"/v2/{repo}/blobs/sha256:{'0' * 64}"),
        client.get("/v2/token", params={"scope": f"repository:{repo}:pull"}),
        client.get("/api/v2/openapi.json"),
        client.get("/api/v2/namespaces/nobody-here/repositories/none"),
        client.get("/healthz"),
    ]
    for response in responses:
        where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        assert response.headers.get("x-content-type-options") == "nosniff", where
        assert response.headers.get("content-security-policy") == "default-src 'none'; frame-ancestors 'none'", where
        assert len(response.headers.get_list("content-security-policy")) == 1, where
    # Any other path is the web hub's: an HTML page (here its 404) with the pages' own policy, no inline code.
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers.get("x-content-type-options") == "nosniff"
    assert page.headers.get_list("content-security-policy") == [PAGE_POLICY]
    assert "unsafe-inline" not in PAGE_POLICY
    assert "frame-ancestors 'none'" in PAGE_POLICY
    assert responses[3].status_code == 404
    assert responses[7].status_code == 404
