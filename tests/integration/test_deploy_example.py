"""The documented multi-replica deployment starts: ``deploy/systemd/dockyard.env.example`` (what docs/deploy.md
tells every replica to use) with only the site-specific values — database, bucket, credentials, data directory —
swapped for the test's, and two replicas that accept each other's tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import backend
from tests.support.ports import free_port
from tests.support.server import REPO_ROOT, DockyardServer

EXAMPLE = REPO_ROOT / "deploy" / "systemd" / "dockyard.env.example"
SITE_SPECIFIC = ("DOCKYARD_DATABASE_URL", "DOCKYARD_STORAGE_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
PER_HOST = ("DOCKYARD_DATA_DIR", "DOCKYARD_METRICS_ADDRESS")  # both replicas run on this one host


def example_env() -> dict[str, str]:
    """The example as systemd's EnvironmentFile reads it: ``KEY=value`` lines, ``#`` comments."""
    env: dict[str, str] = {}
    for line in EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=value: {line!r}"
        env[key.strip()] = value.strip()
    return env


def test_the_example_documents_every_setting_postgresql_requires() -> None:
    env = example_env()
    assert env["DOCKYARD_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env.get("DOCKYARD_SECRET_KEY"), "a PostgreSQL deployment does not start without DOCKYARD_SECRET_KEY"
    assert "DOCKYARD_SECRET_KEY" in (REPO_ROOT / "docs" / "deploy.md").read_text()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[DockyardServer]]:
    data_dir = tmp_path / "data"
    site = backend.server_env(data_dir)  # the test's PostgreSQL database and bucket
    env = {key: value for key, value in example_env().items() if key not in PER_HOST}
    env.update({key: site.get(key, "") for key in SITE_SPECIFIC})
    env.update({key: value for key, value in site.items() if key.startswith("AWS_")})
    servers = [
        DockyardServer(data_dir, env={**env, "DOCKYARD_METRICS_ADDRESS": f"127.0.0.1:{free_port()}"}, secure=True)
        for _ in range(2)
    ]
    try:
        for srv in servers:
            srv.start(timeout=180)  # two workers each
        yield servers
    finally:
        for srv in servers:
            srv.stop()


@pytest.mark.scaleout_only
def test_the_documented_multi_replica_configuration_starts(replicas: list[DockyardServer]) -> None:
    first, second = replicas
    auth = ("admin", DockyardServer.ADMIN_PASSWORD)
    # Behind the load balancer every replica sees the public host name (the token's audience).
    public = {"Host": "registry.example.com"}
    token = httpx.get(
        f"{first.url}/v2/token", params={"scope": "registry:catalog:*"}, auth=auth, headers=public
    ).json()["token"]
    for srv in replicas:
        assert httpx.get(f"{srv.url}/v2/", auth=auth).status_code == 200
        # Every replica reads the signing keys the others made: the shared secret is what lets them.
        bearer = {**public, "Authorization": f"Bearer {token}"}
        assert httpx.get(f"{srv.url}/v2/", headers=bearer).status_code == 200
    assert not (first.data_dir / "secret.key").exists()  # PostgreSQL: never a per-host secret
    metrics_address = second.env["DOCKYARD_METRICS_ADDRESS"]
    metrics_token = second.env["DOCKYARD_METRICS_TOKEN"]
    scraped = httpx.get(f"http://{metrics_address}/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
    assert scraped.status_code == 200
