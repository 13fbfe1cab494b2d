"""``python -m bench.run --config ratelimits``: what Docker Hub-style pull rate limits cost on the hot path.

Dockyard twice over a fresh data directory — with limits off (the default) and with an anonymous limit so high
that nothing is refused, so every manifest GET is counted and answered with the ``ratelimit-*`` headers — each
running the small-image push (to have something to read) and the manifest GET/HEAD phase of ``bench.workload``.
The issue's budget: the manifest GET figure with limits on within 10 % of limits off. Before the measured run the
section checks that the limited server really sends the headers (else the comparison would prove nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.data import OCI_MANIFEST, BigData, SmallImage
from bench.harness import load_average, machine_facts, run_server, source_revision
from bench.servers import DockyardServer
from bench.workload import Params, Results, Workload, log

# Far above what the run can pull in one window: counted, never refused.
UNREFUSED_LIMIT = 1_000_000_000
WINDOW_SECONDS = 21600
ROWS = (
    ("manifest GET (wrk), req/s", "manifest_get", "higher"),
    ("server CPU per manifest GET, µs", "cpu_manifest_get", "lower"),
)


class LimitedDockyard(DockyardServer):
    """Dockyard with anonymous pull limits on (``rate_limit_anonymous``), nothing else changed."""

    name = "dockyard-limits"

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["DOCKYARD_RATE_LIMIT_ANONYMOUS"] = str(UNREFUSED_LIMIT)
        env["DOCKYARD_RATE_LIMIT_WINDOW_SECONDS"] = str(WINDOW_SECONDS)
        return env


class ManifestReads(Workload):
    """Only what the comparison needs: push the small images, then the manifest GET/HEAD phase."""

    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("small images", self.small_images),
            ("rate-limit headers", self.check_headers),
            ("manifest GET/HEAD", self.manifest_wrk),
        ]

    def check_headers(self) -> None:
        image = self.images[0]
        response = httpx.get(
            f"http://{self.host}:{self.port}/v2/{image.repo}/manifests/latest",
            headers={"Accept": OCI_MANIFEST},
            timeout=30,
        )
        limited = "ratelimit-limit" in response.headers
        shown = response.headers.get("ratelimit-limit", "absent")
        self.results.notes.append(f"manifest GET answers {response.status_code}; ratelimit-limit: {shown}")
        if limited != isinstance(self.server, LimitedDockyard):
            raise RuntimeError("rate-limit headers are not what this server's settings say")


def run_pair(workdir: Path, images: list[SmallImage], params: Params) -> dict[str, Results]:
    results: dict[str, Results] = {}
    nothing = BigData(workdir / "none", [])
    for sub in ("off", "on"):
        (workdir / sub).mkdir()
    for server in (DockyardServer(workdir / "off"), LimitedDockyard(workdir / "on")):
        log(f"rate limits: {server.name}")
        results[server.name] = run_server(server, nothing, images, params, workload=ManifestReads)
    return results


def table(off: Results, on: Results) -> list[tuple[str, str, str, str]]:
    out = []
    for label, key, better in ROWS:
        a, b = off.values.get(key), on.values.get(key)
        if a is None or b is None:
            out.append((label, "—" if a is None else f"{a:.0f}", "—" if b is None else f"{b:.0f}", "—"))
            continue
        ratio = b / a if better == "higher" else a / b
        out.append((label, f"{a:.0f}", f"{b:.0f}", f"{ratio:.2f}"))
    return out


HEADER = ("measure", "limits off", "limits on", "on/off (≥ 0.90 meets the budget)")


def facts(started: dt.datetime, load_start: str, command: str) -> list[str]:
    return [
        f"date: {started:%Y-%m-%d %H:%M} UTC; load average {load_start} at start, {load_average()} at end",
        *machine_facts(),
        f"Dockyard source: commit {source_revision()}",
        f"limits on: DOCKYARD_RATE_LIMIT_ANONYMOUS={UNREFUSED_LIMIT}, window {WINDOW_SECONDS} s (counted, never "
        "refused)",
        f"command: `{command}`",
    ]
