"""Shared fixtures for tests that only speak HTTP to a server with authentication on (a pytest plugin, loaded by
``tests/conftest.py``).

- ``secure_server``: one in-process server per test module (``tests/support/app_server.py``) with
  authentication on and the settings of ``secure_server_env``; a module overrides that fixture to add its own.
- ``people``: users with API-token and Basic-auth clients on it (``tests/support/hub_api.py``), per module.
- ``hub``: the administrator's account set-up and clients per account (``tests/support/hub_accounts.py``), per
  test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.hub_accounts import SIGN_IN_OFTEN, Accounts, accounts
from tests.support.hub_api import People

if TYPE_CHECKING:
    from tests.support.app_server import AppServer


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    """Settings of this module's ``secure_server``: by default no credential cache and no lock-outs (tests sign
    in a lot, and expect a changed password or a revoked token to count at once)."""
    return dict(SIGN_IN_OFTEN)


@pytest.fixture(scope="module")
def secure_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, secure_server_env: dict[str, str]
) -> Iterator[AppServer]:
    """A server of this module's own, with authentication on; its administrator is ``admin`` /
    ``AppServer.ADMIN_PASSWORD``."""
    # Imported here: it imports the whole app, which a run of modules that never use it should not pay for.
    from tests.support.app_server import AppServer

    name = request.module.__name__.rpartition(".")[2].removeprefix("test_").replace("_", "-")
    server = AppServer(tmp_path_factory.mktemp(name) / "data", secure=True, env=secure_server_env)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def people(secure_server: AppServer) -> Iterator[People]:
    made = People.open(secure_server)
    yield made
    made.close()


@pytest.fixture
def hub(secure_server: AppServer) -> Iterator[Accounts]:
    with accounts(secure_server) as made:
        yield made
