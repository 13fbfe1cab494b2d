"""The route × principal permission matrix: every route of ``/v2``, ``/api/v2``, ``/v1`` and the web hub
(``rows_web.py``) is called as each principal of ``world.py`` and must answer what its row says. A route without a
row fails the completeness test, so a new route cannot ship without its permissions being stated.

It runs in the embedded pass only (about 1,500 requests): who may do what is decided by the same SQL on both
engines, and the scale-out pass exercises those queries on PostgreSQL through the Hub API, registry-auth and
webhook tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.routing import Route

from dockyard.http.api.app import api_app
from dockyard.http.api.app import served_routes as api_routes
from dockyard.http.oci.routes import ROUTES as OCI_ROUTES
from dockyard.http.web.app import served_routes as web_routes
from dockyard.http.web.app import web_app
from tests.security.rows_api import ROWS as API_ROWS
from tests.security.rows_builds import ROWS as BUILD_ROWS
from tests.security.rows_files import ROWS as FILES_ROWS
from tests.security.rows_immutability import ROWS as IMMUTABILITY_ROWS
from tests.security.rows_invites import ROWS as INVITE_ROWS
from tests.security.rows_lifecycle import ROWS as LIFECYCLE_ROWS
from tests.security.rows_oci import ROWS as OCI_ROWS
from tests.security.rows_proxies import ROWS as PROXY_ROWS
from tests.security.rows_replication import ROWS as REPLICATION_ROWS
from tests.security.rows_sbom import ROWS as SBOM_ROWS
from tests.security.rows_scim import ROWS as SCIM_ROWS
from tests.security.rows_trust import ROWS as TRUST_ROWS
from tests.security.rows_vulns import ROWS as VULN_ROWS
from tests.security.rows_web import ROWS as WEB_ROWS
from tests.security.rows_web_settings import ROWS as WEB_SETTINGS_ROWS
from tests.security.rows_webhooks import ROWS as WEBHOOK_ROWS
from tests.security.scenarios import SCENARIOS
from tests.security.world import PRINCIPALS, World, build_world
from tests.support.app_server import AppServer

pytestmark = pytest.mark.embedded_only

ROWS = {
    **OCI_ROWS,
    **API_ROWS,
    **BUILD_ROWS,
    **FILES_ROWS,
    **SBOM_ROWS,
    **WEBHOOK_ROWS,
    **TRUST_ROWS,
    **VULN_ROWS,
    **LIFECYCLE_ROWS,
    **WEB_ROWS,
    **WEB_SETTINGS_ROWS,
    **IMMUTABILITY_ROWS,
    **PROXY_ROWS,
    **SCIM_ROWS,
    **REPLICATION_ROWS,
    **INVITE_ROWS,
}


def served_routes() -> set[tuple[str, str]]:
    routes: set[tuple[str, str]] = set()
    for route in OCI_ROUTES:
        assert isinstance(route, Route)
        routes |= {(method, route.path) for method in route.methods or ()}
    return routes | api_routes(api_app()) | web_routes(web_app())


def test_every_route_has_a_row() -> None:
    served = served_routes()
    missing = sorted(served - set(ROWS))
    stale = sorted(set(ROWS) - served)
    assert not missing, f"routes without a permission-matrix row: {missing}"
    assert not stale, f"rows for routes that no longer exist: {stale}"


def test_every_row_covers_every_principal() -> None:
    for key, (_, expect) in ROWS.items():
        assert set(expect) == set(PRINCIPALS), key


def test_every_row_names_one_status() -> None:
    """A row that accepted "403 or 404" could not tell a refusal from a leak of a private resource's existence
    (docs/auth.md, "Who decides: hide or deny")."""
    for key, (_, expect) in [*ROWS.items(), *SCENARIOS.items()]:
        for principal, status in expect.items():
            assert type(status) is int, (key, principal, status)
            assert 100 <= status < 600, (key, principal, status)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = AppServer(
        tmp_path_factory.mktemp("matrix") / "data",
        secure=True,
        env={
            "DOCKYARD_LOGIN_MAX_FAILURES_PER_IP": "1000000",
            "DOCKYARD_LOGIN_MAX_FAILURES_PER_USER": "1000000",
            # Every principal's upload rows open sessions on the one world repository and leave most of them open.
            "DOCKYARD_UPLOAD_SESSIONS_PER_ACCOUNT": "1000000",
            "DOCKYARD_UPLOAD_SESSIONS_PER_REPOSITORY": "1000000",
            # The administrator's and the principals' API tokens are fetched once: on a loaded machine the
            # matrix outlasts the default 600 s lifetime.
            "DOCKYARD_API_TOKEN_LIFETIME_SECONDS": "86400",
            # Replication rules point at a closed port on loopback (tests/security/rows_replication.py).
            "DOCKYARD_REPLICATION_ALLOWED_HOSTS": "127.0.0.1",
            # Single sign-on with a provider that is down (a closed port): tests/security/rows_web.py.
            "DOCKYARD_OIDC_ISSUER": "http://127.0.0.1:9",
            "DOCKYARD_OIDC_CLIENT_ID": "dockyard",
        },
    )
    server.start()
    built = build_world(server)
    yield built
    built.hub.close()
    server.stop()


@pytest.mark.parametrize("key", sorted(ROWS), ids=lambda key: f"{key[0]} {key[1]}")
def test_route(world: World, key: tuple[str, str]) -> None:
    call, expect = ROWS[key]
    wrong = {}
    for principal in PRINCIPALS:
        response = call(world, principal, key[0])
        if response.status_code != expect[principal]:
            wrong[principal] = (response.status_code, expect[principal], response.text[:160])
    assert not wrong, wrong


# Scenario rows: cases that one call per route cannot show (a mount from another repository, a refresh grant
# after the credential behind it changed, claiming a namespace). Each row names the principals it concerns and
# the exact status each must get; a scenario may build principals of its own (``World.extra``).
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(world: World, name: str) -> None:
    call, expect = SCENARIOS[name]
    wrong = {}
    for principal in expect:
        response = call(world, principal, name)
        if response.status_code != expect[principal]:
            wrong[principal] = (response.status_code, expect[principal], response.text[:160])
    assert not wrong, wrong
