"""Fixtures of the build pipeline's tests: a server whose builds run on the test executor
(``tests/support/build_executor.py``) and a git server on loopback (``tests/support/gitserver.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gitserver import GitServer
from tests.support.hub_accounts import SIGN_IN_OFTEN


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    return {
        **SIGN_IN_OFTEN,
        "DOCKYARD_BUILD_EXECUTOR": "tests.support.build_executor:GitTarExecutor",
        "DOCKYARD_JOBS_POLL_SECONDS": "0.2",
        "DOCKYARD_WEBHOOK_DISPATCH_POLL_SECONDS": "0.1",
        "DOCKYARD_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",  # build_* events to a receiver on loopback
        "DOCKYARD_BUILD_POLL_CHECK_SECONDS": "5",
    }


@pytest.fixture(scope="module")
def gitserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = GitServer(tmp_path_factory.mktemp("git")).start()
    yield server
    server.stop()
