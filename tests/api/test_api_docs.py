"""The Hub API documents its authentication: ``securitySchemes`` applied per operation, interactive docs served
from this server, the curl examples of docs/auth.md (run here as written), and Docker Hub-style trailing slashes."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.tools import require_tool

pytestmark = pytest.mark.embedded_only  # documentation and routing: the same on both backends

AUTH_DOC = Path(__file__).resolve().parents[2] / "docs" / "auth.md"


def test_security_schemes_are_declared_and_applied(secure_server: AppServer) -> None:
    document = httpx.get(f"{secure_server.url}/api/v2/openapi.json", timeout=60).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerJWT"] == {**schemes["bearerJWT"], "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["basic"]["scheme"] == "basic"
    assert schemes["personalAccessToken"]["scheme"] == "bearer"
    paths = document["paths"]
    named: list[dict[str, list[str]]] = [{"bearerJWT": []}, {"personalAccessToken": []}, {"basic": []}]
    assert paths["/api/v2/user"]["get"]["security"] == named  # signed in only
    assert paths["/api/v2/namespaces/{ns}/repositories"]["get"]["security"] == [*named, {}]  # anonymous too
    assert paths["/api/v2/auth/token"]["post"]["security"] == []  # credentials in the body
    operations = [op for item in paths.values() for op in item.values() if isinstance(op, dict)]
    assert all("security" in op for op in operations)


def test_interactive_docs_are_served_here(secure_server: AppServer) -> None:
    page = httpx.get(f"{secure_server.url}/api/v2/docs", timeout=60)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources
    assert all(source.startswith("/api/v2/docs/") for source in sources)  # nothing from a CDN
    for source in sources:
        asset = httpx.get(f"{secure_server.url}{source}", timeout=60)
        assert asset.status_code == 200, source
    init = httpx.get(f"{secure_server.url}/api/v2/docs/init.js", timeout=60).text
    assert '"/api/v2/openapi.json"' in init


def test_trailing_slashes_are_accepted(secure_server: AppServer) -> None:
    base = f"{secure_server.url}/api/v2/namespaces/admin/repositories"
    plain = httpx.get(base, timeout=60)
    slashed = httpx.get(f"{base}/", timeout=60)
    assert plain.status_code == slashed.status_code == 200
    assert slashed.json() == plain.json()
    token = httpx.post(
        f"{secure_server.url}/api/v2/auth/token/",
        json={"identifier": "admin", "secret": secure_server.ADMIN_PASSWORD},
        timeout=60,
    )
    assert token.status_code == 200
    assert token.json()["access_token"]


def doc_examples() -> list[str]:
    text = AUTH_DOC.read_text()
    section = text.split("## Using the API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def test_the_curl_examples_of_docs_auth_run_as_written(secure_server: AppServer) -> None:
    require_tool("curl")
    require_tool("jq")
    examples = doc_examples()
    assert len(examples) == 3
    token = httpx.post(
        f"{secure_server.url}/api/v2/auth/token",
        json={"identifier": "admin", "secret": secure_server.ADMIN_PASSWORD},
        timeout=60,
    ).json()["access_token"]
    created = httpx.post(
        f"{secure_server.url}/api/v2/access-tokens",
        json={"token_label": "docs-example", "scopes": ["repo:read"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert created.status_code == 201, created.text
    env = {
        **os.environ,
        "DOCKYARD": secure_server.url,
        "PASSWORD": secure_server.ADMIN_PASSWORD,
        "PAT": created.json()["token"],
    }
    outputs = []
    for example in examples:
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", example], env=env, capture_output=True, text=True, timeout=120
        )
        assert ran.returncode == 0, (example, ran.stderr)
        outputs.append(ran.stdout.split())
    assert outputs[0] == ["admin"]
    assert len(outputs[1]) == 1
    assert outputs[1][0].isdigit()
    assert outputs[2] == ["admin", "admin"]
