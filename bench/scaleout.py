"""The scale-out section of ``python -m bench.run``: Dockyard on PostgreSQL + S3 with one replica and with several,
and the reference registry with its S3 driver, all on one S3 server (moto) and one PostgreSQL cluster.

The services come from the test support code: ``tests/support/postgres.py`` (a throwaway cluster from the
distribution's binaries) and ``tests/support/s3.py`` (moto's standalone server in a subprocess). Each
configuration gets a bucket of its own, and Dockyard a database of its own; the S3 server is reset between
configurations so that none pays for the objects of the one before.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from bench.data import OCI_MANIFEST, make_big_data, make_small_images
from bench.harness import run_server
from bench.http import AsyncConnection, HTTPError, expect
from bench.servers import ReferenceS3Server, ReplicatedDockyard, Server, _cpu_seconds, process_tree
from bench.workload import OCTET, Params, Results, Workload, for_each, log, run_async

MiB = 1024 * 1024


class ScaleoutWorkload(Workload):
    """The phases the scale-out table shows: big blobs, small images, tags list and catalog (page 1).

    Dockyard gets its tags and repositories through the API, like the embedded section. The reference gets them
    written straight into its bucket, in its own storage layout: through the registry, every manifest PUT stats
    blobs and links with S3 LIST requests, and moto answers each LIST by scanning every key in the bucket, so
    5,000 tags took 321 s (15.6 tags/s) in a trial run, and the 2,000 repositories would take longer still.
    """

    SEED_CONCURRENCY = 16

    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("big-blob pushes and pulls", self.big_blobs),
            ("small images", self.small_images),
            ("tags list", self.tags_list),
            ("catalog", self.catalog),
        ]

    def existing_repos(self) -> int:
        # The small images' repositories, bench/big and bench/tags; both registries list all of them. Counting
        # them through the reference's catalog would walk its whole bucket once per page of 100.
        return len(self.images) + 2

    def fill_tags(self, repo: str, count: int) -> None:
        if not isinstance(self.server, ReferenceS3Server):
            super().fill_tags(repo, count)
            return
        digest = self.images[0].manifest_digest
        # The manifest's blob (pushed with the first small image) is linked into the repository once; each tag is
        # its current link, all that the tags list and a GET by tag read. The tag's index link (read by lookups
        # by digest and deletes) is left out.
        links = [_revision_link(repo, digest)]
        links += [(f"repositories/{repo}/_manifests/tags/t{i:05d}/current/link", digest) for i in range(count)]
        self._seed("tags", links)
        self._check_manifest(f"/v2/{repo}/manifests/t{count - 1:05d}", digest)

    def fill_catalog(self, count: int) -> None:
        if not isinstance(self.server, ReferenceS3Server):
            super().fill_catalog(count)
            return
        digest = self.images[0].manifest_digest
        # A repository is what has a _manifests directory: the manifest's revision link and the tag "latest".
        links: list[tuple[str, str]] = []
        for i in range(count):
            repo = f"catalog/r{i:05d}"
            links.append(_revision_link(repo, digest))
            links.append((f"repositories/{repo}/_manifests/tags/latest/current/link", digest))
        self._seed("catalog", links)
        if count:
            self._check_manifest(f"/v2/catalog/r{count - 1:05d}/manifests/latest", digest)

    def _seed(self, what: str, links: list[tuple[str, str]]) -> None:
        """PUT each (path under the registry root, digest) link object straight into the reference's bucket."""
        assert isinstance(self.server, ReferenceS3Server)
        endpoint = urlsplit(self.server.s3["endpoint"])
        host, port = endpoint.hostname, endpoint.port
        assert host is not None
        assert port is not None
        prefix = f"/{self.server.s3['bucket']}/{self.server.s3['rootdirectory'].strip('/')}/docker/registry/v2/"

        async def put(conn: AsyncConnection, i: int) -> None:
            path, digest = links[i]
            response = await conn.request("PUT", prefix + path, OCTET, digest.encode())
            expect(response, 200, what=f"S3 PUT {path}")

        elapsed = run_async(for_each(host, port, len(links), self.SEED_CONCURRENCY, put))
        message = (
            f"{what}: written straight into the bucket as {len(links):,} link objects in {elapsed:.1f} s "
            f"({self.SEED_CONCURRENCY} connections to the S3 server), not through the registry"
        )
        self.results.notes.append(message)
        log(f"  {message}")

    def _check_manifest(self, path: str, digest: str) -> None:
        """The registry serves what was seeded."""

        async def get() -> None:
            conn = AsyncConnection(self.host, self.port)
            try:
                response = expect(await conn.request("GET", path, {"Accept": OCI_MANIFEST}), 200, what=f"GET {path}")
            finally:
                await conn.close()
            if response.header("docker-content-digest") != digest:
                raise HTTPError(f"GET {path}: digest {response.header('docker-content-digest')!r}, expected {digest}")

        run_async(get())


def _revision_link(repo: str, digest: str) -> tuple[str, str]:
    algorithm, hex_digest = digest.split(":", 1)
    return f"repositories/{repo}/_manifests/revisions/{algorithm}/{hex_digest}/link", digest


@dataclass
class ScaleoutRun:
    """The results by configuration (``one``, ``many``, ``reference``) and the facts about the services."""

    results: dict[str, Results] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def services_missing() -> str | None:
    """Why the scale-out section cannot run here, or None."""
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("pytest") is None:
        return "moto (and pytest, which tests/support needs) are not installed: make dev installs them"
    from tests.support.postgres import find_bin_dir

    if find_bin_dir() is None:
        return "PostgreSQL server binaries not found (package postgresql: make system-deps installs it)"
    return None


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU seconds of the cluster so far: the postmaster (first line of postmaster.pid) and its live processes,
    plus the backends that have exited (the postmaster has reaped them, so they count in its children's time)."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    live = sum(_cpu_seconds(pid) for pid in process_tree(postmaster) if pid != postmaster)
    return _cpu_seconds(postmaster, reaped=True) + live


def run_scaleout(params: Params, workdir: Path, replicas: int, wanted: list[str], workers: int = 0) -> ScaleoutRun:
    """Run the configurations of ``wanted`` ("dockyard": one replica and ``replicas``; "reference"). ``workers``
    sets each replica's server processes (0: Dockyard's default, one per core)."""
    from tests.support.postgres import PostgresCluster, find_bin_dir
    from tests.support.s3 import MotoServer

    run = ScaleoutRun()
    bin_dir = find_bin_dir()
    assert bin_dir is not None, "services_missing() first"
    cluster = PostgresCluster(bin_dir)
    moto = MotoServer(log_path=workdir / "moto.log")
    try:
        log("scale-out: starting PostgreSQL and the S3 server (moto)")
        cluster.start()
        moto.start()
        run.facts.append(
            f"PostgreSQL {cluster.version} (fsync off) on 127.0.0.1:{cluster.port}; "
            f"moto {importlib.metadata.version('moto')} S3 server on {moto.endpoint}"
        )
        log(f"scale-out test data in {workdir}: {params.size // MiB} MiB x {2 * params.rounds} blobs (one file)")
        big = make_big_data(workdir, params.size, 2 * params.rounds)
        images = make_small_images(params.small_images)

        def moto_cpu() -> float:
            return _cpu_seconds(moto.process.pid) if moto.process is not None else 0.0

        configs: list[tuple[str, str, int]] = []
        if "dockyard" in wanted:
            configs += [("one", "dockyard-x1", 1), ("many", f"dockyard-x{replicas}", replicas)]
        if "reference" in wanted:
            configs.append(("reference", "reference-s3", 0))
        for role, name, count in configs:
            server_dir = workdir / name
            server_dir.mkdir()
            bucket = moto.make_bucket(f"bench-{name}")
            helpers: dict[str, Callable[[], float]] = {"the S3 server (moto)": moto_cpu}
            server: Server
            if count:
                settings = {
                    **moto.env,
                    "DOCKYARD_DATABASE_URL": cluster.create_database(name),
                    "DOCKYARD_SECRET_KEY": f"bench-secret-{name}-0123456789",
                    "DOCKYARD_STORAGE_URL": moto.storage_url(bucket, "dockyard", addressing="path"),
                    **({"DOCKYARD_WORKERS": str(workers)} if workers else {}),
                }
                server = ReplicatedDockyard(
                    server_dir, name, count, settings, extra_cpu=partial(postgres_cpu_seconds, cluster.data_dir)
                )
                if count > 1:
                    helpers["the balancer"] = server.balancer_cpu_seconds
            else:
                s3 = {
                    "region": moto.region,
                    "endpoint": moto.endpoint,
                    "bucket": bucket,
                    "access_key": moto.access_key,
                    "secret_key": moto.secret_key,
                    "rootdirectory": "/ref",
                }
                server = ReferenceS3Server(server_dir, name, s3)
            database_cpu = postgres_cpu_seconds(cluster.data_dir)
            try:
                results = run_server(server, big, images, params, ScaleoutWorkload, helpers)
            except Exception as exc:
                results = Results(name, errors=[f"could not run: {exc}"])
                log(f"{name}: {exc}")
            if count:
                database_cpu = postgres_cpu_seconds(cluster.data_dir) - database_cpu
                results.notes.append(
                    f"PostgreSQL used {database_cpu:.1f} CPU-s of the server CPU counted for this run "
                    "(from start to stop)"
                )
            if isinstance(server, ReplicatedDockyard) and count > 1:
                spread = server.balancer_report().splitlines()
                if spread:
                    results.notes.append(f"balancer: {spread[-1]}")
            run.results[role] = results
            _reset(moto.endpoint)
    except Exception as exc:
        run.errors.append(f"scale-out services: {exc}")
        log(f"scale-out: {exc}")
    finally:
        moto.stop()
        cluster.stop()
    return run


def _reset(endpoint: str) -> None:
    """Drop every bucket and object on the S3 server (moto's reset API): frees its memory and temp files."""
    import httpx

    try:
        httpx.post(f"{endpoint}/moto-api/reset", timeout=60).raise_for_status()
    except httpx.HTTPError as exc:
        log(f"scale-out: could not reset the S3 server: {exc}")
