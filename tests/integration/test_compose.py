"""``deploy/compose.yaml`` as ``podman-compose config`` resolves it (podman-compose from the lock file; missing, the
test fails under CI): the registry's settings are ones Dockyard accepts, its database and bucket are the services
the file starts (same credentials, same names), the migrations run once before the registry, and the secrets are
required rather than defaulted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the environment
from sqlalchemy.engine import make_url

from dockyard.settings import load_settings
from tests.support.server import REPO_ROOT
from tests.support.tools import missing

COMPOSE = REPO_ROOT / "deploy" / "compose.yaml"
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "MINIO_ROOT_PASSWORD": "minio-secret", "DOCKYARD_SECRET_KEY": "seal"}


def podman_compose() -> str:
    path = Path(sys.executable).parent / "podman-compose"
    if not path.exists():
        missing("podman-compose is not installed (make dev installs it from the lock file)")
    return str(path)


def compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # A clean environment (no stray DOCKYARD_* or secrets) and a directory without a .env file.
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        [podman_compose(), "-f", str(COMPOSE), "config"],
        env={**base, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    proc = compose_config(tmp_path, SECRETS)
    assert proc.returncode == 0, proc.stderr
    document: dict[str, Any] = yaml.safe_load(proc.stdout)
    return document


def test_the_services_fit_together(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    services = config["services"]
    assert set(services) == {"db", "s3", "bucket", "migrate", "dockyard"}
    registry, migrate, db, s3 = services["dockyard"], services["migrate"], services["db"], services["s3"]

    env = registry["environment"]
    assert migrate["environment"] == env  # the migrations run against the registry's own database
    assert migrate["command"] == ["db", "upgrade"]
    assert registry["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert registry["depends_on"]["bucket"]["condition"] == "service_completed_successfully"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate["image"] == registry["image"]
    assert Path(migrate["build"]["context"]).resolve() == REPO_ROOT
    assert (REPO_ROOT / migrate["build"]["dockerfile"]).is_file()
    assert "/readyz" in " ".join(registry["healthcheck"]["test"])
    assert any(str(port).endswith(":5000") for port in registry["ports"])

    # Dockyard accepts the settings as given.
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = load_settings()
    assert settings.secret_key == SECRETS["DOCKYARD_SECRET_KEY"]

    database = make_url(settings.database_url)
    assert database.host == "db"
    assert database.username == db["environment"]["POSTGRES_USER"]
    assert database.password == db["environment"]["POSTGRES_PASSWORD"] == SECRETS["POSTGRES_PASSWORD"]
    assert database.database == db["environment"]["POSTGRES_DB"]

    storage = urlsplit(settings.storage_url)
    assert storage.scheme == "s3"
    assert urlsplit(parse_qs(storage.query)["endpoint"][0]).netloc == "s3:9000"
    assert env["AWS_ACCESS_KEY_ID"] == s3["environment"]["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == s3["environment"]["MINIO_ROOT_PASSWORD"] == SECRETS["MINIO_ROOT_PASSWORD"]
    # The bucket service creates the registry's bucket, versioned (docs/backup.md relies on it).
    created = " ".join(services["bucket"]["entrypoint"])
    assert f"mc mb --ignore-existing blobs/{storage.netloc}" in created
    assert f"mc version enable blobs/{storage.netloc}" in created
    assert services["bucket"]["environment"]["MC_HOST_blobs"].endswith(
        f"@{urlsplit(parse_qs(storage.query)['endpoint'][0]).netloc}"
    )


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_each_secret_is_required(tmp_path: Path, secret: str) -> None:
    proc = compose_config(tmp_path, {key: value for key, value in SECRETS.items() if key != secret})
    assert proc.returncode != 0
    assert secret in proc.stderr
