"""``dockyard builder`` as a real process on another "machine": it shares only the database (PostgreSQL on the
scale-out backend) and reaches the server's ``/v2``, with no blob-storage settings of its own, while ``dockyard
serve`` runs no jobs at all. The build stays queued until the builder starts, then runs there and pushes through
HTTP; SIGTERM stops the builder cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.checks import wait_for
from tests.support.gitserver import GitServer
from tests.support.hub_api import People, create_repository
from tests.support.server import REPO_ROOT, DockyardServer

SECRET = "secret-key-shared-by-the-server-and-its-builders"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DockyardServer]:
    served = DockyardServer(
        tmp_path / "data",
        secure=True,
        env={"DOCKYARD_JOBS_ENABLED": "false", "DOCKYARD_SECRET_KEY": SECRET, "DOCKYARD_CREDENTIAL_CACHE_SECONDS": "0"},
    )
    served.start()
    yield served
    served.stop()


def start_builder(server: DockyardServer, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
        "PYTHONPATH": str(REPO_ROOT),  # tests.support.build_executor
        "DOCKYARD_DATA_DIR": str(tmp_path / "builder"),  # no storage settings: it never touches blob storage
        "DOCKYARD_DATABASE_URL": server.database_url,
        "DOCKYARD_SECRET_KEY": SECRET,
        "DOCKYARD_BUILD_EXECUTOR": "tests.support.build_executor:GitTarExecutor",
        "DOCKYARD_BUILD_REGISTRY_URL": server.url,
        "DOCKYARD_JOBS_POLL_SECONDS": "0.2",
    }
    with (tmp_path / "builder.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dockyard.cli.main", "builder", "--concurrency", "2", "--grace", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )


def start_worker(server: DockyardServer, tmp_path: Path) -> subprocess.Popen[bytes]:
    """``dockyard worker`` with the server's own settings (database and blob storage)."""
    env = {**os.environ, "DOCKYARD_DATA_DIR": str(server.data_dir), **server.env, "DOCKYARD_JOBS_ENABLED": "true"}
    env["DOCKYARD_JOBS_POLL_SECONDS"] = "0.2"
    # A failed attempt is retried within a second or two, not after the production backoff.
    env["DOCKYARD_JOBS_BACKOFF_BASE_SECONDS"] = "0.5"
    env["DOCKYARD_JOBS_BACKOFF_CAP_SECONDS"] = "2"
    with (tmp_path / "worker.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "dockyard.cli.main", "worker", "--grace", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )


def test_a_builder_process_runs_the_builds_of_a_server_without_jobs(
    server: DockyardServer, gitserver: GitServer, tmp_path: Path
) -> None:
    people = People.open(server)
    builder: subprocess.Popen[bytes] | None = None
    try:
        owner = people.user("remote")
        create_repository(owner, "app")
        tree = gitserver.create(f"{owner.name}-remote", tmp_path / "tree")
        tree.commit({"Dockerfile": "ECHO built elsewhere\n"}, "initial")
        tree.push("main")
        base = f"/api/v2/repositories/{owner.name}/app"
        assert owner.api.post(f"{base}/build-link", json={"url": tree.url}).status_code == 201
        assert owner.api.post(f"{base}/build-rules", json={"source_name": "main", "tag": "latest"}).status_code == 201
        (build,) = owner.api.post(f"{base}/builds", json={"source_name": "main"}).json()["builds"]

        def state() -> str:
            value: str = owner.api.get(f"{base}/builds/{build}").json()["state"]
            return value

        assert state() == "queued"  # the server runs no jobs
        builder = start_builder(server, tmp_path)
        # The builder's part ends with the image pushed: the signing stage (SBOM, provenance, signature) needs blob
        # storage, so a process that has it runs it — none here yet.
        wait_for(lambda: state() == "signing", timeout=60, interval=0.2, what="the build on the builder")
        tags = owner.registry.get(f"/v2/{owner.name}/app/tags/list").json()["tags"]
        assert tags == ["latest"]
        log = owner.api.get(f"{base}/builds/{build}/logs").text  # live lines: nothing archives them here
        assert "STEP 1/1: ECHO built elsewhere" in log
        assert f"pushed {owner.name}/app:latest" in log
        builder.send_signal(signal.SIGTERM)
        assert builder.wait(30) == 0
        assert "running builds.run" in (tmp_path / "builder.log").read_text()
        assert state() == "signing"
        worker = start_worker(server, tmp_path)
        try:
            try:
                wait_for(lambda: state() == "succeeded", timeout=120, interval=0.2, what="signing on a worker")
            except AssertionError as exc:
                worker_log = (tmp_path / "worker.log").read_text(errors="replace")[-4000:]
                logs = f"the worker's log ends:\n{worker_log}\nthe server's:\n{server.log_tail()}"
                raise AssertionError(f"{exc}\n{logs}") from exc
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        digest = owner.api.get(f"{base}/builds/{build}").json()["digest"]
        referrers = owner.registry.get(
            f"/v2/{owner.name}/app/referrers/{digest}", params={"artifactType": "application/vnd.dsse.envelope.v1+json"}
        )
        assert len(referrers.json()["manifests"]) == 2  # the SBOM and the provenance (the inventory's SPDX aside)
    finally:
        if builder is not None and builder.poll() is None:
            builder.kill()
            builder.wait()
        people.close()
