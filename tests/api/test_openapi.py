"""The Hub API's OpenAPI document matches its routes, and fuzzing every operation with schemathesis (as the
administrator, who reaches every handler, and anonymously; SCIM's operations also with an organization's SCIM
token) finds no server error and no error that is not problem+json — or, under ``/api/v2/scim/``, SCIM's error
schema (RFC 7644 §3.12), which is what SCIM clients read."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from dockyard.http.api.app import api_app, served_routes
from tests.support import backend
from tests.support.app_server import AppServer
from tests.support.server import Server

# Each pass (embedded, scale-out) draws its own cases (a seed per backend): together they try twice as many.
MAX_EXAMPLES = 8
ANONYMOUS_EXAMPLES = 3  # nearly every anonymous call stops at authentication: fewer cases find as much
SEED = {"embedded": 20261206, "scaleout": 6122026}[backend.current()]


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


SCIM_PATH = "/api/v2/scim/2.0/"


def _check(response: schemathesis.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400 and response.request.method != "HEAD" and SCIM_PATH in str(response.request.url):
        assert response.headers["content-type"][0].startswith("application/scim+json"), response.text[:300]
        body = response.json()
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert body["status"] == str(response.status_code)
        assert isinstance(body["detail"], str)
    elif response.status_code >= 400 and response.request.method != "HEAD":
        assert response.headers["content-type"][0].startswith("application/problem+json"), response.text[:300]
        body = response.json()
        assert body["status"] == response.status_code
        assert isinstance(body["title"], str)
        assert isinstance(body["detail"], str)


def _fuzz(schema: schemathesis.BaseSchema, examples: int = MAX_EXAMPLES) -> int:
    """Run every operation's generated cases (positive and negative) through ``_check``; returns how many."""
    calls = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @seed(SEED)
        @given(
            case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
            | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
        )
        def run(case: schemathesis.Case[Any]) -> None:  # as_strategy's own type: SearchStrategy[Case]
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


@pytest.fixture(scope="module")
def scim_schema(secure_server: AppServer) -> schemathesis.BaseSchema:
    admin = ("admin", Server.ADMIN_PASSWORD)
    with httpx.Client(base_url=secure_server.url, timeout=30, auth=admin) as client:
        org = f"fuzz{uuid.uuid4().hex[:10]}"
        assert client.post("/api/v2/orgs", json={"orgname": org}).status_code == 201
        made = client.post(f"/api/v2/orgs/{org}/scim-token")
    assert made.status_code == 201, made.text
    schema = _schema(secure_server, {"Authorization": f"Bearer {made.json()['token']}"})
    return schema.include(path_regex="^/api/v2/scim/")


def test_fuzz_scim(scim_schema: schemathesis.BaseSchema) -> None:
    assert _fuzz(scim_schema, MAX_EXAMPLES * 2) > 0


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
