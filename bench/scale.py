"""Synthetic scale test of the metadata DB: builds a PostgreSQL database with ≥ 1 M manifests and ≥ 5 M blobs
and measures the hot queries *as Dockyard issues them* (the statements are taken from the code and compiled for
PostgreSQL), with their plans.

    .venv/bin/python -m bench.scale [--repos 20000] [--manifests-per-repo 50] [--blobs-per-repo 250]

Prints a Markdown report (plans and timings) to stdout and to bench/results/scale.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Executable
from tests.support.postgres import PostgresCluster, require_postgres

from dockyard.migrations.runner import upgrade_sync
from dockyard.registry.gc import (
    BLOB_KEY,
    LINK_KEY,
    MANIFEST_KEY,
    blob_candidates,
    link_candidates,
    manifest_candidates,
    window_upper,
)
from dockyard.registry.listing import catalog_query, referrers_query, tags_query
from dockyard.registry.manifests import _BY_DIGEST, _BY_TAG

RESULTS = Path(__file__).parent / "results"


def sql_of(statement: Executable, params: dict[str, Any] | None = None) -> str:
    """The statement as PostgreSQL receives it, with its bound parameters inlined."""
    if params:
        statement = statement.params(**params)  # type: ignore[attr-defined]
    compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined,no-untyped-call]
    return str(compiled)


async def populate(conn: asyncpg.Connection, repos: int, manifests: int, blobs: int) -> float:
    """Generate the synthetic content with set-based SQL; returns seconds taken."""
    started = time.perf_counter()
    statements = [
        f"""INSERT INTO repositories (id, name, created_at)
            SELECT i, 'org' || (i % 500) || '/repo-' || lpad(i::text, 7, '0'), now() - interval '30 days'
            FROM generate_series(1, {repos}) i""",
        # Blob b belongs to repository 1 + (b - 1) % repos; 64-hex digests from md5 pairs.
        f"""INSERT INTO blobs (digest, size, created_at)
            SELECT 'sha256:' || md5('b' || b) || md5('c' || b), 1000 + (b % 100000), now() - interval '30 days'
            FROM generate_series(1, {repos * blobs}) b""",
        f"""INSERT INTO repository_blobs (repository_id, digest, created_at)
            SELECT 1 + (b - 1) % {repos}, 'sha256:' || md5('b' || b) || md5('c' || b), now() - interval '30 days'
            FROM generate_series(1, {repos * blobs}) b""",
        # Manifest j = repo + repos * m; 2 % are referrers (signatures) of the previous manifest of their repo.
        f"""INSERT INTO manifests (id, repository_id, digest, media_type, artifact_type, subject_digest, size,
                                   content, created_at)
            SELECT j, 1 + (j - 1) % {repos}, 'sha256:' || md5('m' || j) || md5('n' || j),
                   'application/vnd.oci.image.manifest.v1+json',
                   CASE WHEN j % 50 = 0 THEN 'application/vnd.dev.cosign.artifact.sig.v1+json'
                        ELSE 'application/vnd.oci.image.config.v1+json' END,
                   CASE WHEN j % 50 = 0 AND j > {repos}
                        THEN 'sha256:' || md5('m' || (j - {repos})) || md5('n' || (j - {repos})) END,
                   600, convert_to(repeat('x', 600), 'UTF8'), now() - interval '30 days'
            FROM generate_series(1, {repos * manifests}) j""",
        # Each manifest references 5 blobs of its own repository (config + 4 layers).
        f"""INSERT INTO manifest_references (manifest_id, kind, digest)
            SELECT j, 'blob', 'sha256:' || md5('b' || b) || md5('c' || b)
            FROM generate_series(1, {repos * manifests}) j,
                 LATERAL (SELECT (1 + (j - 1) % {repos}) + {repos} * (5 * ((j - 1) / {repos}) + k) AS b
                          FROM generate_series(0, 4) k) refs
            WHERE b <= {repos * blobs}""",
        # 80 % of manifests are tagged; repository 1 also gets 5,000 extra tags for the tag-page query.
        f"""INSERT INTO tags (repository_id, name, manifest_id, updated_at)
            SELECT 1 + (j - 1) % {repos}, 'v' || ((j - 1) / {repos}), j, now()
            FROM generate_series(1, {repos * manifests}) j WHERE j % 5 <> 0""",
        """INSERT INTO tags (repository_id, name, manifest_id, updated_at)
            SELECT 1, 'build-' || lpad(t::text, 5, '0'), 1, now() FROM generate_series(1, 5000) t""",
        f"SELECT setval(pg_get_serial_sequence('repositories', 'id'), {repos})",
        f"SELECT setval(pg_get_serial_sequence('manifests', 'id'), {repos * manifests})",
        "VACUUM ANALYZE",
    ]
    for statement in statements:
        t0 = time.perf_counter()
        await conn.execute(statement, timeout=3600)
        print(f"  {time.perf_counter() - t0:7.1f} s  {' '.join(statement.split())[:90]}", flush=True)
    return time.perf_counter() - started


async def measure(conn: asyncpg.Connection, sql: str, runs: int) -> tuple[str, float, float]:
    """EXPLAIN ANALYZE once for the plan; then the median and max server-side execution time of ``runs``."""
    plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}"))
    times: list[float] = []
    for _ in range(runs):
        out = await conn.fetchval(f"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON, FORMAT JSON) {sql}")
        times.append(float(json.loads(out)[0]["Execution Time"]))
    return plan, statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=20_000)
    parser.add_argument("--manifests-per-repo", type=int, default=50)
    parser.add_argument("--blobs-per-repo", type=int, default=250)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    cluster = PostgresCluster(require_postgres())
    cluster.start()
    try:
        url = cluster.create_database("scale")
        upgrade_sync(url)
        asyncio.run(run(cluster, url, args))
    finally:
        cluster.stop()


async def run(cluster: PostgresCluster, url: str, args: argparse.Namespace) -> None:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        print(
            f"populating: {args.repos} repositories, {args.repos * args.manifests_per_repo} manifests, "
            f"{args.repos * args.blobs_per_repo} blobs",
            flush=True,
        )
        seconds = await populate(conn, args.repos, args.manifests_per_repo, args.blobs_per_repo)
        counts = {
            t: int(await conn.fetchval(f"SELECT count(*) FROM {t}"))
            for t in ("repositories", "manifests", "blobs", "repository_blobs", "manifest_references", "tags")
        }
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        mid = args.repos // 2 + 1  # every manifest of this repository is tagged (j % 5 == 1)
        mid_repo = f"org{mid % 500}/repo-{mid:07d}"
        subject_j = args.repos * 10 + args.repos // 2  # a manifest that has a referrer (j % 50 == 0 pattern)
        subject_j -= subject_j % 50
        subject = f"sha256:{_md5('m', subject_j - args.repos)}{_md5('n', subject_j - args.repos)}"
        cutoff = datetime.now(UTC) - timedelta(hours=24)
        queries = {
            "manifest by tag (GET /v2/<name>/manifests/<tag>)": sql_of(_BY_TAG, {"name": mid_repo, "reference": "v7"}),
            "manifest by digest": sql_of(
                _BY_DIGEST, {"name": mid_repo, "reference": f"sha256:{_md5('m', 1)}{_md5('n', 1)}"}
            ),
            "tags page 1 of 100 (repository with 5,050 tags)": sql_of(tags_query(1, 100, None)),
            "tags page after 'build-02500' (n=100)": sql_of(tags_query(1, 100, "build-02500")),
            "catalog page 1 of 100": sql_of(catalog_query(100, None)),
            f"catalog page after '{mid_repo}' (n=100)": sql_of(catalog_query(100, mid_repo)),
            "referrers of a manifest": sql_of(referrers_query(_repo_of(subject_j, args.repos), subject, None)),
        }
        # Garbage collection walks each table in windows of 5,000 keys; time one window in the middle.
        for label, key, candidates in (
            ("untagged manifests", MANIFEST_KEY, manifest_candidates),
            ("unreferenced blob links", LINK_KEY, link_candidates),
            ("unlinked blobs", BLOB_KEY, blob_candidates),
        ):
            total = counts["manifests" if key is MANIFEST_KEY else "repository_blobs" if key is LINK_KEY else "blobs"]
            middle = await conn.fetchrow(sql_of(window_upper(key, None, total // 2)))
            after = tuple(middle) if middle is not None else None
            upper_row = await conn.fetchrow(sql_of(window_upper(key, after, 5000)))
            upper = tuple(upper_row) if upper_row is not None else None
            queries[f"GC: next window bound ({label})"] = sql_of(window_upper(key, after, 5000))
            queries[f"GC mark: one window of 5,000 ({label})"] = sql_of(candidates(cutoff, after, upper))
        lines = [
            "| query | median ms | max ms |",
            "|---|---:|---:|",
        ]
        plans: list[str] = []
        for label, sql in queries.items():
            plan, median, worst = await measure(conn, sql, args.runs)
            lines.append(f"| {label} | {median:.3f} | {worst:.3f} |")
            plans.append(f"### {label}\n\n```sql\n{sql}\n```\n\n```\n{plan.rstrip()}\n```\n")
            print(f"{label}: median {median:.3f} ms, max {worst:.3f} ms", flush=True)
        report = "\n".join(
            [
                f"Measured {datetime.now(UTC):%Y-%m-%d} on this machine kind (2 cores), PostgreSQL {cluster.version}, "
                f"synthetic data generated in {seconds:.0f} s; database size {size}.",
                "",
                "| table | rows |",
                "|---|---:|",
                *[f"| {t} | {n:,} |" for t, n in counts.items()],
                "",
                f"Server-side execution time (EXPLAIN ANALYZE), {args.runs} runs each:",
                "",
                *lines,
                "",
                "## Plans",
                "",
                *plans,
            ]
        )
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "scale.md").write_text(report)
        print(report)
    finally:
        await conn.close()


def _md5(prefix: str, n: int) -> str:
    import hashlib

    return hashlib.md5(f"{prefix}{n}".encode(), usedforsecurity=False).hexdigest()


def _repo_of(j: int, repos: int) -> str:
    i = 1 + (j - 1) % repos
    return f"org{i % 500}/repo-{i:07d}"


if __name__ == "__main__":
    main()
