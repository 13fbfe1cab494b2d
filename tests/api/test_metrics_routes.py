"""``/metrics`` names every route (no ``route="other"``, no paths as labels) and measures what an operator
watches beyond HTTP: build info, auth failures, the job queue and job runs, DB statement and storage latency."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.oci import push_image, unique_name
from tests.support.tools import require_tool


@pytest.fixture(scope="module")
def server(secure_server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secure_server.url, timeout=60) as client:
        yield client


def route_labels(text: str) -> set[str]:
    return set(re.findall(r'dockyard_http_requests_total\{[^}]*route="([^"]*)"', text))


def test_every_request_is_counted_under_a_named_route(server: httpx.Client, secure_server: AppServer) -> None:
    admin = ("admin", secure_server.ADMIN_PASSWORD)
    assert server.get("/v2/token", auth=admin, params={"service": "dockyard"}).status_code == 200
    assert server.get("/v1/search", params={"q": "x"}).status_code == 200
    assert server.get("/api/v2/repositories/library/nothing").status_code in (401, 404)
    assert server.get("/api/v2/no/such/endpoint/here").status_code == 404
    assert server.get("/healthz").status_code == 200
    assert server.get("/").status_code == 200
    assert server.get("/no-such-page").status_code == 404
    text = server.get("/metrics").text
    labels = route_labels(text)
    assert {"token", "healthz", "api.search_repositories", "api.unmatched", "web.home", "web.unmatched"} - {
        label.removeprefix("ops.") for label in labels
    } == set(), labels
    assert "other" not in labels
    assert not [label for label in labels if "/" in label], labels


def test_operational_metrics(server: httpx.Client, secure_server: AppServer) -> None:
    admin = ("admin", secure_server.ADMIN_PASSWORD)
    assert server.get("/v2/token", auth=("admin", "wrong-password")).status_code == 401
    assert server.get("/v2/token", auth=("admin", "dy_pat_" + "0" * 40)).status_code == 401
    with httpx.Client(base_url=secure_server.url, timeout=60, auth=admin) as client:
        push_image(client, f"admin/{unique_name()}", "v1")
    text = server.get("/metrics").text
    assert re.search(r'dockyard_build_info\{python="[0-9.]+",version="[^"]+"\} 1\.0', text), text[:2000]
    assert re.search(r'dockyard_auth_failures_total\{credential="password"\} [1-9]', text)
    assert re.search(r'dockyard_auth_failures_total\{credential="access_token"\} [1-9]', text)
    assert re.search(r"dockyard_db_statement_duration_seconds_count [1-9]", text)
    assert re.search(r'dockyard_storage_operation_duration_seconds_count\{operation="put_blob"\} [1-9]', text)
    assert re.search(r'dockyard_job_queue_depth\{state="queued"\} \d', text)
    assert re.search(r"dockyard_job_queue_oldest_age_seconds \d", text)
    assert "# TYPE dockyard_job_runs_total counter" in text
    assert "# TYPE dockyard_webhook_delivery_attempts_total counter" in text


def test_promtool_accepts_the_exposition(server: httpx.Client, secure_server: AppServer) -> None:
    """Prometheus' own checker (Debian's ``prometheus`` package) parses and lints ``/metrics`` after traffic on
    every surface: names, types, help texts, label syntax and counter suffixes."""
    promtool = require_tool("promtool")
    assert server.get("/v2/").status_code == 401
    assert server.get("/v1/search", params={"q": "x"}).status_code == 200
    assert server.get("/api/v2/repositories/library/nothing").status_code in (401, 404)
    exposition = server.get("/metrics").text
    assert "dockyard_http_requests_total" in exposition
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "", checked.stdout  # no lint findings either
