"""Who may read ``/metrics``: a bearer token (``metrics_token``) and a listener of its own (``metrics_address``),
which then serves every worker's counters and the main port serves none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.server import DockyardServer

TOKEN = "metrics-token-for-tests"
BASE_COUNT = 'dockyard_http_requests_total{method="GET",route="base",status="200"}'


def _server(tmp_path: Path, env: dict[str, str]) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path / "data", env=env)
    try:
        srv.start(timeout=180)  # two workers starting on a loaded machine
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def with_token(tmp_path: Path) -> Iterator[DockyardServer]:
    yield from _server(tmp_path, {"DOCKYARD_METRICS_TOKEN": TOKEN, "DOCKYARD_WORKERS": "1"})


def test_metrics_token_is_required_on_the_main_port(with_token: DockyardServer) -> None:
    url = f"{with_token.url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "dockyard_http" not in refused.text
    served = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert served.status_code == 200
    assert "dockyard_http_requests_total" in served.text
    assert httpx.get(f"{with_token.url}/healthz").status_code == 200  # the other ops endpoints stay open


@pytest.mark.parametrize(("workers", "token"), [("2", ""), ("1", TOKEN)])
def test_metrics_address_is_a_listener_of_its_own(tmp_path: Path, workers: str, token: str) -> None:
    port = free_port()
    env = {"DOCKYARD_METRICS_ADDRESS": f"127.0.0.1:{port}", "DOCKYARD_WORKERS": workers}
    if token:
        env["DOCKYARD_METRICS_TOKEN"] = token
    for srv in _server(tmp_path, env):
        assert httpx.get(f"{srv.url}/metrics").status_code == 404
        for _ in range(10):  # a connection each: the workers share them out
            assert httpx.get(f"{srv.url}/v2/").status_code == 200
        metrics = f"http://127.0.0.1:{port}/metrics"
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        if token:
            assert httpx.get(metrics).status_code == 401
        response = httpx.get(metrics, headers=auth)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        # Every worker's requests, summed.
        line = next(x for x in response.text.splitlines() if x.startswith(BASE_COUNT))
        assert float(line.split()[-1]) == 10.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics")
