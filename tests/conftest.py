"""Shared fixtures: one live server per session (tests use unique repository names) and an HTTP client.

Servers run on the backend named by ``DOCKYARD_TEST_BACKEND`` (``embedded`` or ``scaleout``, see
``tests/support/backend.py``); ``scripts/run-tests.sh`` runs the suite once on each.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import backend
from tests.support.server import DockyardServer

# Cheap password hashes for every server, CLI run and in-process app of the session (set before any of them reads
# its settings): argon2id at its production cost (~0.2 s of CPU) on each of the suite's many thousand password
# checks was a large part of its CPU time. tests/security/test_throttle.py puts the production cost back where
# the cost itself is what is tested.
TEST_PASSWORD_HASH = {
    "DOCKYARD_PASSWORD_HASH_MEMORY_KIB": "8",
    "DOCKYARD_PASSWORD_HASH_TIME_COST": "1",
    "DOCKYARD_PASSWORD_HASH_PARALLELISM": "1",
}
for _name, _value in TEST_PASSWORD_HASH.items():
    os.environ.setdefault(_name, _value)
# A stopping test server hands its running jobs back after 5 s instead of 30: a server stopped while a job waits
# (a layer index claimed by a killed process, a delivery to a receiver that is down) otherwise sat out the grace.
os.environ.setdefault("DOCKYARD_JOBS_STOP_GRACE_SECONDS", "5")


def _share_the_default_ssl_context() -> None:
    """Every ``httpx.Client()`` builds an SSL context and loads a CA bundle into it (~30 ms of CPU), even for
    plain-HTTP loopback servers; the suite makes tens of thousands of clients (a readiness poll makes one per try).
    Clients with the default verification share one context per CA source here (certifi's, or the environment's
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``, which httpx reads on each call); anything else is built as before."""
    import ssl

    from httpx._config import create_ssl_context as create  # what the transports' module imported, unpatched
    from httpx._transports import default as transport

    shared: dict[tuple[str | None, str | None], ssl.SSLContext] = {}

    def create_ssl_context(verify: object = True, cert: object = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is not True or cert is not None:
            return create(verify=verify, cert=cert, trust_env=trust_env)  # type: ignore[arg-type]
        source = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else (None, None)
        if source not in shared:
            shared[source] = create(trust_env=trust_env)
        return shared[source]

    # The name the transports call, which their module imports without re-exporting it: set in its namespace.
    vars(transport)["create_ssl_context"] = create_ssl_context


_share_the_default_ssl_context()

# secure_server, secure_server_env, people, hub: an in-process server per module for tests that only speak HTTP.
pytest_plugins = ["tests.support.fixtures"]


def pytest_report_header(config: pytest.Config) -> str:
    return f"dockyard test backend: {backend.describe()}"


# Pure tests (no server, no database): the same in both passes, so they run in the embedded one only.
PURE = tuple(
    f"tests/unit/{part}"
    for part in (
        "core/",
        "signing/",
        "accounts/",
        "webhooks/",
        "jobs/",
        "auth/test_scopes.py",
        "auth/test_permissions.py",
        "test_credentials.py",
        "test_error_subjects.py",
        "test_proxies.py",
        "test_secret_key.py",  # the embedded data directory's key file (the scale-out run sets the key)
        "cli/test_keygen.py",  # cosign key files, no database
    )
)


# Tests whose subject does not depend on the database or the blob store — a browser driving pages (the services
# under them are tested on both backends through the API), the transport (TLS, the nginx recipe), process
# supervision, the metrics listener, the compose file — run in the embedded pass only.
ONE_PASS = (
    "tests/web/",
    "tests/clients/test_tls.py",
    "tests/clients/test_nginx_recipe.py",
    "tests/integration/test_compose.py",
    "tests/integration/test_supervisor.py",
    "tests/integration/test_forkserver.py",
    "tests/api/test_metrics_access.py",
)

# Backend-independent tests that run once in the *scale-out* pass instead: the two passes run side by side, and
# these even out their wall time. (A run of the embedded pass alone skips them.)
IN_SCALEOUT_PASS = (
    "tests/bench/",
    "tests/integration/test_storage_s3.py",
    "tests/builds/test_pipeline.py",  # git, triggers and the test executor; builds' records and queue: both passes
    "tests/clients/test_sbom_debian.py",  # what dpkg lists in a Debian rootfs: the SBOM, not the storage under it
)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What is imported and collected now (the application, every test module, pytest's own) lives for the whole
    session: into the permanent generation with it, as ``dockyard serve`` does with its application
    (``dockyard.cli.serve.built_then_frozen``), so that the full garbage collections of a long session do not scan
    it again and again. With the fork server's own freeze, eight API and integration files took 14 % less CPU
    (45.6 → 39.1 CPU-s, two runs each)."""
    gc.collect()
    gc.freeze()
    # And full collections a tenth as often (each scans what the session's fixtures and in-process servers hold):
    # a test process's garbage is mostly freed by reference counting. 5 % less CPU on eight API and integration
    # files (two runs each).
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, 100)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    current = backend.current()
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        if where.startswith(IN_SCALEOUT_PASS):
            if current != backend.SCALEOUT:
                item.add_marker(pytest.mark.skip(reason="backend-independent: runs once, in the scale-out pass"))
            continue
        if current != backend.EMBEDDED and where.startswith(PURE + ONE_PASS):
            item.add_marker(pytest.mark.embedded_only)
        if current != backend.EMBEDDED and item.get_closest_marker("embedded_only"):
            item.add_marker(pytest.mark.skip(reason="embedded_only: runs in the embedded pass"))
        if current != backend.SCALEOUT and item.get_closest_marker("scaleout_only"):
            item.add_marker(pytest.mark.skip(reason="scaleout_only: runs in the scale-out pass"))


@pytest.fixture(scope="session", autouse=True)
def _backend_services() -> Iterator[None]:
    """Shared backend services (the PostgreSQL cluster) start on first use and stop after every server."""
    yield
    backend.shutdown()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    data_dir = tmp_path_factory.mktemp("dockyard") / "data"
    srv = DockyardServer(data_dir, env={"DOCKYARD_WORKERS": "2"})  # the real clients go through two workers
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[DockyardServer]:
    """A server of its own (own data directory, own database), for tests that kill or restart it."""
    srv = DockyardServer(tmp_path / "data")
    srv.start()
    yield srv
    srv.stop()
