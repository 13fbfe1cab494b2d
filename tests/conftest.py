"""Shared fixtures: one live server per session (tests use unique repository names) and an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import DockyardServer


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    data_dir = tmp_path_factory.mktemp("dockyard") / "data"
    srv = DockyardServer(data_dir)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[DockyardServer]:
    """A server of its own, for tests that kill or restart it."""
    srv = DockyardServer(tmp_path / "data")
    srv.start()
    yield srv
    srv.stop()
