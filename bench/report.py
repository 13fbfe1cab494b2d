"""The results table: which measures, in which order and direction, as plain text and as Markdown."""

from __future__ import annotations

from dataclasses import dataclass

from bench.workload import CATALOG_MAX_N, Params, Results

MiB = 1024 * 1024
GiB = 1024 * MiB

RATIO_NOTE = (
    "ratio > 1 means Dockyard is better: dockyard/reference for measures marked ↑ (higher is better), "
    "reference/dockyard for measures marked ↓ (lower is better: times, CPU, memory)."
)
METHOD_NOTES = [
    "MB = 10^6 bytes. Big blobs: one keep-alive connection, bodies sent with sendfile(2), downloads read with "
    "recv_into (the digest is hashed in a second thread); every push uploads content of its own; median of the "
    "rounds (the per-round values are in the notes).",
    "manifest HEAD uses bench.loadgen (closed loop, same connections, processes and duration as the wrk run) "
    "because wrk 4.1 never completes a HEAD response that carries Content-Length (wg/wrk#198); GET is shown "
    "with both tools so the two can be compared.",
    "server CPU and RSS: utime+stime and VmRSS/VmHWM from /proc, summed over the server's process tree; the CPU of "
    "a write phase is read once the server is idle again (the events and jobs its writes set off included).",
]


@dataclass(frozen=True, slots=True)
class Measure:
    key: str
    label: str
    higher_is_better: bool
    decimals: int


def size_label(nbytes: int) -> str:
    if nbytes >= GiB and nbytes % GiB == 0:
        return f"{nbytes // GiB} GiB"
    return f"{nbytes / MiB:g} MiB"


def measures(p: Params) -> list[Measure]:
    size = size_label(p.size)
    chunk = size_label(p.chunk)
    return [
        Measure("push_mono", f"{size} monolithic push: POST + one PUT (MB/s ↑)", True, 0),
        Measure("push_chunked", f"{size} chunked push: {chunk} PATCHes with Content-Range (MB/s ↑)", True, 0),
        Measure("pull_check", f"{size} pull, client checks the sha256 digest (MB/s ↑)", True, 0),
        Measure("pull_discard", f"{size} pull, client discards the bytes (MB/s ↑)", True, 0),
        Measure("cpu_push_mono", "server CPU per GiB, monolithic push (CPU-s ↓)", False, 2),
        Measure("cpu_push_chunked", "server CPU per GiB, chunked push (CPU-s ↓)", False, 2),
        Measure("cpu_pull_check", "server CPU per GiB, pull (CPU-s ↓)", False, 2),
        Measure("cpu_small_push", "server CPU per small image push, 7 requests (ms ↓)", False, 1),
        Measure("cpu_small_pull", "server CPU per small image pull, 3 requests (ms ↓)", False, 2),
        Measure("cpu_manifest_get", "server CPU per manifest GET under wrk (µs ↓)", False, 0),
        Measure("cpu_tag_put", "server CPU per manifest PUT by tag (ms ↓)", False, 2),
        Measure("cpu_mounts", "server CPU per cross-repo mount (ms ↓)", False, 2),
        Measure(
            "range_rps",
            f"random {size_label(p.range_length)} range reads, {p.range_connections} connections (req/s ↑)",
            True,
            0,
        ),
        Measure("small_push", f"{p.small_images} small images push, {p.concurrency} clients (images/s ↑)", True, 1),
        Measure("small_pull", f"{p.small_images} small images pull, {p.concurrency} clients (images/s ↑)", True, 1),
        Measure("manifest_get", f"manifest GET, wrk {p.wrk_connections} connections (req/s ↑)", True, 0),
        Measure(
            "manifest_get_loadgen", f"manifest GET, bench.loadgen {p.wrk_connections} connections (req/s ↑)", True, 0
        ),
        Measure(
            "manifest_head_loadgen", f"manifest HEAD, bench.loadgen {p.wrk_connections} connections (req/s ↑)", True, 0
        ),
        Measure("tag_put", f"{p.tags:,} manifest PUTs by tag, {p.concurrency} clients (req/s ↑)", True, 0),
        Measure("tags_full", f"tags list of {p.tags:,} tags, full list without n (ms ↓)", False, 1),
        Measure("tags_page", f"tags list of {p.tags:,} tags, page 1 with n={p.page} (ms ↓)", False, 2),
        Measure("catalog_full", f"catalog of {p.repos:,} repos, full list without n, Links followed (ms ↓)", False, 1),
        Measure(
            "catalog_full_n",
            f"catalog of {p.repos:,} repos, full list with n={min(p.repos, CATALOG_MAX_N)}, Links followed (ms ↓)",
            False,
            1,
        ),
        Measure("catalog_page", f"catalog of {p.repos:,} repos, page 1 with n={p.page} (ms ↓)", False, 2),
        Measure("mounts", f"{p.mounts:,} cross-repo mounts, {p.concurrency} clients (ops/s ↑)", True, 0),
        Measure("rss_before_push", f"server RSS before the {size} push (MiB ↓)", False, 1),
        Measure("rss_after_push", f"server RSS after the {size} push (MiB ↓)", False, 1),
        Measure("hwm_after_push", f"server peak RSS (VmHWM) right after the {size} push (MiB ↓)", False, 1),
        Measure("hwm", "server peak RSS, VmHWM over the whole run (MiB ↓)", False, 1),
    ]


def _cell(value: float | None, decimals: int) -> str:
    return "—" if value is None else f"{value:,.{decimals}f}"


def rows(p: Params, dockyard: Results | None, reference: Results | None) -> list[tuple[str, str, str, str]]:
    out = []
    for m in measures(p):
        d = dockyard.values.get(m.key) if dockyard else None
        r = reference.values.get(m.key) if reference else None
        ratio = "—"
        if d is not None and r is not None:
            num, den = (d, r) if m.higher_is_better else (r, d)
            # A zero denominator: too small to measure (CPU clock ticks are 10 ms), not infinitely better.
            ratio = f"{num / den:.2f}" if den > 0 else "n/a"
        out.append((m.label, _cell(d, m.decimals), _cell(r, m.decimals), ratio))
    return out


HEADER = ("measure", "dockyard", "reference", "ratio")


def text_table(table: list[tuple[str, str, str, str]], header: tuple[str, str, str, str] = HEADER) -> str:
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(4)]

    def line(row: tuple[str, str, str, str]) -> str:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, 4)]
        return " | ".join(cells)

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in table)])


def markdown_table(table: list[tuple[str, str, str, str]], header: tuple[str, str, str, str] = HEADER) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|"]
    lines.extend("| " + " | ".join(row) + " |" for row in table)
    return "\n".join(lines)


# -- the scale-out table: Dockyard with one replica and with several, and the reference, all on one S3 server ------

SCALEOUT_RATIO_NOTE = (
    "×1 ratio and ×N ratio compare Dockyard with one replica and with N replicas against the reference; "
    "> 1 means Dockyard is better (dockyard/reference for ↑ measures, reference/dockyard for ↓ measures)."
)
SCALEOUT_METHOD_NOTES = [
    "one S3 server (moto, a single Python process that keeps objects in temp files and whole request bodies in "
    "memory) and one PostgreSQL cluster (fsync off) serve every configuration; each configuration gets a bucket "
    "of its own (and Dockyard a database of its own), and the S3 server is reset between configurations.",
    "Dockyard: `dockyard serve --open` with default settings otherwise (one worker process per core), "
    "DOCKYARD_DATABASE_URL on PostgreSQL and DOCKYARD_STORAGE_URL on the bucket. With N replicas: N such servers on "
    "one database and bucket, behind bench.balancer (tests/support/lb.py's per-connection round-robin TCP "
    "balancer in a process of its own). A big blob moves over one connection, so it goes through one replica.",
    "reference: docker-registry with its s3 driver (regionendpoint on the same S3 server, path-style, v4auth, "
    "rootdirectory /ref) and `redirect: disable: true`, so that blob GETs go through the registry as Dockyard's "
    "do, instead of 307 redirects to presigned URLs; `storage.delete.enabled: true`.",
    "server CPU: the registry's processes; for Dockyard also the PostgreSQL cluster, where its metadata work "
    "happens. The S3 server's CPU (the reference's metadata work) is charged to nobody; it is in the notes.",
]


_SCALEOUT_KEYS = (
    "push_mono",
    "push_chunked",
    "pull_check",
    "small_push",
    "small_pull",
    "tags_page",
    "catalog_page",
    "cpu_push_mono",
    "cpu_push_chunked",
    "cpu_pull_check",
    "cpu_small_push",
    "cpu_small_pull",
)


def scaleout_measures(p: Params) -> list[Measure]:
    """The embedded table's measures that the scale-out run takes, plus the peak RSS of all replicas."""
    by_key = {m.key: m for m in measures(p)}
    hwm = Measure("hwm", "server peak RSS, VmHWM over the whole run, all replicas (MiB ↓)", False, 1)
    return [by_key[key] for key in _SCALEOUT_KEYS] + [hwm]


def _ratio(d: float | None, r: float | None, higher_is_better: bool) -> str:
    if d is None or r is None:
        return "—"
    num, den = (d, r) if higher_is_better else (r, d)
    return f"{num / den:.2f}" if den > 0 else "n/a"


def scaleout_header(replicas: int) -> tuple[str, ...]:
    return ("measure", "dockyard ×1", f"dockyard ×{replicas}", "reference", "×1 ratio", f"×{replicas} ratio")


def scaleout_rows(
    p: Params, one: Results | None, many: Results | None, reference: Results | None
) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for m in scaleout_measures(p):
        d1 = one.values.get(m.key) if one else None
        dn = many.values.get(m.key) if many else None
        r = reference.values.get(m.key) if reference else None
        out.append(
            (
                m.label,
                _cell(d1, m.decimals),
                _cell(dn, m.decimals),
                _cell(r, m.decimals),
                _ratio(d1, r, m.higher_is_better),
                _ratio(dn, r, m.higher_is_better),
            )
        )
    return out


def text_grid(header: tuple[str, ...], table: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, len(row))]
        return " | ".join(cells)

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(row) for row in table)])


def markdown_grid(header: tuple[str, ...], table: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines.extend("| " + " | ".join(row) + " |" for row in table)
    return "\n".join(lines)
