"""``dockyard backup`` / ``restore`` / ``fsck`` on the embedded deployment: a backup taken while threads push
restores into an empty data directory that passes the consistency check, and every image pushed before the
backup started pulls from a server over the restored directory; ``fsck`` finds what is missing; restore refuses a
data directory that is in use."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import dockyard_cli
from tests.support.oci import push_image, sha256, unique_name
from tests.support.server import DockyardServer

PUSHERS = 4


@dataclass(frozen=True)
class Pushed:
    repo: str
    tag: str
    digest: str
    blobs: tuple[tuple[str, bytes], ...]
    finished: float  # time.monotonic() when the manifest PUT was answered


def dockyard(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")}
    proc = dockyard_cli(*args, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"dockyard {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def dockyard_json(*args: str, check: bool = True) -> Any:
    return json.loads(dockyard(*args, "--json", check=check).stdout)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path / "source" / "data", embedded=True)
    srv.data_dir.parent.mkdir(parents=True)
    srv.start()
    yield srv
    srv.stop()


def _push_one(client: httpx.Client, repo: str, tag: str) -> Pushed:
    image = push_image(client, repo, tag)
    blobs = ((sha256(image.config), image.config), *((sha256(layer), layer) for layer in image.layers))
    return Pushed(repo, tag, image.digest, blobs, time.monotonic())


def _pusher(url: str, stop: threading.Event, pushed: list[Pushed], errors: list[BaseException]) -> None:
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            repo = unique_name("backup")
            n = 0
            while not stop.is_set():
                pushed.append(_push_one(client, repo, f"t{n}"))
                n += 1
    except BaseException as exc:  # reported by the test thread
        errors.append(exc)


def _assert_pulls(client: httpx.Client, image: Pushed) -> None:
    response = client.get(
        f"/v2/{image.repo}/manifests/{image.tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    assert response.status_code == 200, (image, response.text)
    assert response.headers["docker-content-digest"] == image.digest
    for digest, data in image.blobs:
        blob = client.get(f"/v2/{image.repo}/blobs/{digest}")
        assert blob.status_code == 200, (image, digest, blob.text)
        assert blob.content == data


def test_a_backup_taken_during_pushes_restores_consistent_and_complete(source: DockyardServer, tmp_path: Path) -> None:
    pushed: list[Pushed] = []
    with httpx.Client(base_url=source.url, timeout=60) as client:
        pushed += [_push_one(client, unique_name("backup"), "before") for _ in range(3)]
    stop = threading.Event()
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_pusher, args=(source.url, stop, pushed, errors), daemon=True) for _ in range(PUSHERS)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)  # pushes in full flow
        started = time.monotonic()
        manifest = dockyard_json("backup", str(tmp_path / "backup"), "--data-dir", str(source.data_dir))
        finished = time.monotonic()
        time.sleep(2)  # pushes go on after the backup too
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors
    before = [image for image in pushed if image.finished < started]
    after = [image for image in pushed if image.finished > finished]
    during = [image for image in pushed if started < image.finished < finished]
    assert during, "no push was answered while the backup ran: the test did not test concurrency"
    assert len(before) > 3, "no push completed while the backup was being prepared"
    assert manifest["blob_count"] >= 2 * len(before)
    assert manifest["database"]["revision"]
    assert (tmp_path / "backup" / "secret.key").exists()
    assert oct((tmp_path / "backup").stat().st_mode & 0o777) == "0o700"
    listed = json.loads((tmp_path / "backup" / "backup.json").read_text())["blobs"]
    assert len(listed) == manifest["blob_count"]

    restored_dir = tmp_path / "restored" / "data"
    restored = dockyard_json("restore", str(tmp_path / "backup"), "--data-dir", str(restored_dir))
    assert restored["check"]["ok"], restored["check"]
    assert restored["blob_count"] == manifest["blob_count"]
    check = dockyard_json("fsck", "--data-dir", str(restored_dir))
    assert check["ok"], check
    assert check["tags"] >= len(before)

    server = DockyardServer(restored_dir, embedded=True)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for image in before:
                _assert_pulls(client, image)
            # The pushes answered after the backup ended are not in it (its snapshot predates them).
            assert after
            for image in after:
                assert client.get(f"/v2/{image.repo}/manifests/{image.tag}").status_code == 404
    finally:
        server.stop()


def test_fsck_names_a_missing_blob_and_restore_refuses_a_data_dir_in_use(
    source: DockyardServer, tmp_path: Path
) -> None:
    with httpx.Client(base_url=source.url, timeout=60) as client:
        image = _push_one(client, unique_name("backup"), "v1")
    assert dockyard_json("fsck", "--data-dir", str(source.data_dir))["ok"]
    backup = tmp_path / "backup"
    dockyard_json("backup", str(backup), "--data-dir", str(source.data_dir), "--hardlink")

    refused = dockyard_json("restore", str(backup), "--data-dir", str(source.data_dir), check=False)
    assert "exists" in refused["error"]["message"], refused
    not_empty = dockyard("backup", str(backup), "--data-dir", str(source.data_dir), check=False)
    assert not_empty.returncode == 1
    assert "not an empty directory" in not_empty.stderr

    restored_dir = tmp_path / "restored" / "data"
    assert dockyard_json("restore", str(backup), "--data-dir", str(restored_dir))["check"]["ok"]
    layer_digest = image.blobs[-1][0]
    (restored_dir / "storage" / "blobs" / "sha256" / layer_digest[7:9] / layer_digest[7:]).unlink()
    proc = dockyard("fsck", "--data-dir", str(restored_dir), "--json", check=False)
    assert proc.returncode == 1
    problems = json.loads(proc.stdout)["problems"]
    assert [(p["kind"], p["repository"], p["subject"], p["digest"]) for p in problems] == [
        ("blob_missing", image.repo, image.digest, layer_digest)
    ]


def test_backup_is_for_the_embedded_deployment_only(tmp_path: Path) -> None:
    proc = dockyard(
        "backup",
        str(tmp_path / "backup"),
        "--data-dir",
        str(tmp_path),
        "--config",
        str(_config(tmp_path, 'database_url = "postgresql+asyncpg://u:p@127.0.0.1:1/x"\nsecret_key = "k" \n')),
        "--json",
        check=False,
    )
    assert proc.returncode == 1
    assert "pg_dump" in json.loads(proc.stdout)["error"]["message"]


def _config(directory: Path, text: str) -> Path:
    path = directory / "dockyard.toml"
    path.write_text(text)
    return path


def test_postgresql_and_s3_restore_from_pg_dump_with_the_bucket_as_it_is(tmp_path: Path) -> None:
    """docs/backup.md for the scale-out deployment: dump the database first (``pg_dump`` while pushes go on), then
    the bucket needs no copy of its own for consistency — storage is append-only within the GC grace period, so
    every blob the dump references is still there. Restored with ``pg_restore`` into an empty database, the
    deployment passes ``fsck`` and serves every image pushed before the dump."""
    from tests.support.postgres import SUPERUSER, shared_cluster
    from tests.support.s3 import shared_moto_server

    cluster = shared_cluster()
    moto = shared_moto_server()
    storage = {**moto.env, "DOCKYARD_STORAGE_URL": moto.storage_url(moto.make_bucket())}
    secret = {"DOCKYARD_SECRET_KEY": "test-secret-backup-pg-xxxxxxxxxx"}
    source_url = cluster.create_database("backup_source")
    source = DockyardServer(
        tmp_path / "source" / "data", embedded=True, env={"DOCKYARD_DATABASE_URL": source_url, **storage, **secret}
    )
    source.data_dir.parent.mkdir(parents=True)
    source.start()
    pushed: list[Pushed] = []
    dump = tmp_path / "dockyard.dump"
    connect = ["--host", "127.0.0.1", "--port", str(cluster.port), "--username", SUPERUSER]
    try:
        with httpx.Client(base_url=source.url, timeout=60) as client:
            pushed += [_push_one(client, unique_name("pgbackup"), "before") for _ in range(3)]
        stop = threading.Event()
        errors: list[BaseException] = []
        threads = [threading.Thread(target=_pusher, args=(source.url, stop, pushed, errors)) for _ in range(2)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            started = time.monotonic()
            subprocess.run(
                [str(cluster.bin_dir / "pg_dump"), "--format=custom", "--file", str(dump), *connect,
                 make_url_database(source_url)],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
        assert not errors, errors
    finally:
        source.stop()
    before = [image for image in pushed if image.finished < started]

    restored_url = cluster.create_database("backup_restored")
    subprocess.run(
        [str(cluster.bin_dir / "pg_restore"), "--no-owner", "--exit-on-error", *connect,
         "--dbname", make_url_database(restored_url), str(dump)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env = {"DOCKYARD_DATABASE_URL": restored_url, **storage, **secret}
    check = json.loads(dockyard_env(env, "fsck", "--data-dir", str(tmp_path / "restored"), "--json").stdout)
    assert check["ok"], check
    assert check["tags"] >= len(before)
    server = DockyardServer(tmp_path / "restored" / "data", embedded=True, env=env)
    server.data_dir.parent.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for image in before:
                _assert_pulls(client, image)
    finally:
        server.stop()


def make_url_database(url: str) -> str:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    assert database
    return database


def dockyard_env(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("DOCKYARD_")}
    proc = dockyard_cli(*args, env={**clean, **env}, timeout=300)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc
