"""The Hub API's OpenAPI document matches its routes, and fuzzing every operation with schemathesis (as the
administrator, who reaches every handler, and anonymously) finds no server error and no error that is not
problem+json."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from dockyard.http.api.app import api_app, served_routes
from tests.support.app_server import AppServer
from tests.support.server import Server

MAX_EXAMPLES = 12
ANONYMOUS_EXAMPLES = 4  # nearly every anonymous call stops at authentication: fewer cases find as much


def _schema(server: Server, headers: dict[str, str]) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v2/openapi.json")
    schema.config.update(base_url=server.url, headers=headers, request_timeout=30)
    return schema


@pytest.fixture(scope="module")
def admin_schema(secure_server: AppServer) -> schemathesis.BaseSchema:
    response = httpx.post(
        f"{secure_server.url}/api/v2/auth/token",
        json={"identifier": "admin", "secret": Server.ADMIN_PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return _schema(secure_server, {"Authorization": f"Bearer {response.json()['access_token']}"})


@pytest.fixture(scope="module")
def anonymous_schema(secure_server: AppServer) -> schemathesis.BaseSchema:
    return _schema(secure_server, {})


def _check(response: schemathesis.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400 and response.request.method != "HEAD":
        assert response.headers["content-type"][0].startswith("application/problem+json"), response.text[:300]
        body = response.json()
        assert body["status"] == response.status_code
        assert isinstance(body["title"], str)
        assert isinstance(body["detail"], str)


def _fuzz(schema: schemathesis.BaseSchema, examples: int = MAX_EXAMPLES) -> int:
    """Run every operation's generated cases (positive and negative) through ``_check``; returns how many."""
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @given(
            case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
            | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        )
        def run(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            try:
                _check(case.call())
            except AssertionError as exc:
                raise AssertionError(f"{case.operation.label}: {exc}") from None

        run()
    return calls


def test_fuzz_as_admin(admin_schema: schemathesis.BaseSchema) -> None:
    assert _fuzz(admin_schema) > 0


def test_fuzz_anonymously(anonymous_schema: schemathesis.BaseSchema) -> None:
    assert _fuzz(anonymous_schema, ANONYMOUS_EXAMPLES) > 0


def test_document_lists_every_route(secure_server: AppServer) -> None:
    document = httpx.get(f"{secure_server.url}/api/v2/openapi.json", timeout=30).json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    served = {(method, path) for method, path in served_routes(api_app()) if method != "HEAD"}
    assert served
    assert {(path, method) for method, path in served} <= documented, served
    assert "/v1/search" in document["paths"]
    assert "/api/v2/auth/token" in document["paths"]
