"""Each signing test module gets its own secure server (``server``) and an administrator's client (``admin``); a
module adds settings by overriding ``server_env``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import DockyardServer


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str]) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path_factory.mktemp("signing") / "data", secure=True, env=server_env)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(server: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, auth=("admin", server.ADMIN_PASSWORD)) as client:
        yield client
