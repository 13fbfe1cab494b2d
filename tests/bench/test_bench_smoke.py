"""The side-by-side benchmark in --quick mode against both servers: proves the harness works end to end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import require_postgres
from tests.support.server import REPO_ROOT, DockyardServer
from tests.support.tools import missing, require_tool


def _table_rows(markdown: str) -> list[str]:
    """The rows of the first Markdown table, without its header and rule."""
    return [line for line in markdown.splitlines() if line.startswith("| ") and "---" not in line][1:]


def _run_bench(tmp_path: Path, *args: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--workdir", str(tmp_path), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, f"bench.run failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"


# The benchmark always runs Dockyard as `dockyard serve` with default settings (SQLite + filesystem), whatever
# backend the suite is testing: once, in the embedded pass, is enough.
@pytest.mark.embedded_only
def test_quick_benchmark_runs_against_both_servers(tmp_path: Path) -> None:
    require_tool("docker-registry")
    require_tool("wrk")
    output = tmp_path / "latest.md"
    _run_bench(tmp_path, "--config", "embedded", "--output", str(output))
    table = output.read_text()
    assert "| measure | dockyard | reference | ratio |" in table
    rows = _table_rows(table)
    assert len(rows) >= 20
    # Every measure has a number for both servers ("—" marks a measurement that failed).
    missing_values = [row for row in rows if any(cell.strip() == "—" for cell in row.split("|")[2:4])]
    assert not missing_values, "measures without a value:\n" + "\n".join(missing_values)


# The scale-out section brings its own PostgreSQL cluster and S3 server, whatever backend the suite is testing:
# once is enough. Two replicas instead of three keep it short.
@pytest.mark.embedded_only
def test_quick_scaleout_benchmark_runs_against_all_configurations(tmp_path: Path) -> None:
    require_tool("docker-registry")
    require_postgres()
    if importlib.util.find_spec("moto") is None:
        missing("moto is not installed (make dev installs it)")
    output = tmp_path / "latest-scaleout.md"
    _run_bench(tmp_path, "--config", "scaleout", "--replicas", "2", "--scaleout-output", str(output))
    table = output.read_text()
    assert "| measure | dockyard ×1 | dockyard ×2 | reference | ×1 ratio | ×2 ratio |" in table
    rows = _table_rows(table)
    assert len(rows) >= 10
    missing_values = [row for row in rows if any(cell.strip() == "—" for cell in row.split("|")[2:5])]
    assert not missing_values, "measures without a value:\n" + "\n".join(missing_values)
    # Both replicas served connections through the balancer.
    spread = [line for line in table.splitlines() if "connections per backend port" in line]
    assert spread, "no balancer report in the notes"
    counts = [int(part.rsplit(":", 1)[1]) for part in spread[0].split("port:", 1)[1].split(",")]
    assert len(counts) == 2, spread[0]
    assert min(counts) > 0, spread[0]


@pytest.mark.embedded_only
def test_quick_startup_benchmark_measures_both_servers(tmp_path: Path) -> None:
    require_tool("docker-registry")
    output = tmp_path / "latest-startup.md"
    _run_bench(tmp_path, "--config", "startup", "--startup-output", str(output))
    rows = _table_rows(output.read_text())
    assert [row.split("|")[1].split("(")[0].strip() for row in rows] == [
        "start until /v2/ answers, on an initialised data directory",
        "CPU-s the server's processes used until then",
        "idle RSS of the whole process tree, VmRSS summed",
        "idle PSS of the whole process tree: shared pages counted once",
        "peak RSS during the start, VmHWM summed over the tree",
        "processes in the tree",
    ]
    missing_values = [row for row in rows if any(cell.strip() == "—" for cell in row.split("|")[2:4])]
    assert not missing_values, "measures without a value:\n" + "\n".join(missing_values)


@pytest.mark.embedded_only
def test_quick_rate_limit_benchmark_compares_limits_off_and_on(tmp_path: Path) -> None:
    require_tool("wrk")
    output = tmp_path / "latest-ratelimits.md"
    _run_bench(tmp_path, "--config", "ratelimits", "--servers", "dockyard", "--ratelimits-output", str(output))
    text = output.read_text()
    rows = _table_rows(text)
    assert [row.split("|")[1].strip() for row in rows] == [
        "manifest GET (wrk), req/s",
        "server CPU per manifest GET, µs",
    ]
    missing_values = [row for row in rows if any(cell.strip() == "—" for cell in row.split("|")[2:5])]
    assert not missing_values, "measures without a value:\n" + "\n".join(missing_values)
    # The limited server really counted: its answers carried the headers (checked by the section, noted here).
    assert f"ratelimit-limit: {1_000_000_000};w=21600" in text
    assert "dockyard: manifest GET answers 200; ratelimit-limit: absent" in text


@pytest.mark.embedded_only
def test_quick_builds_benchmark_times_real_builds(tmp_path: Path) -> None:
    for tool in ("buildah", "busybox", "git"):
        require_tool(tool)
    output = tmp_path / "latest-builds.md"
    _run_bench(
        tmp_path,
        "--config",
        "builds",
        "--builds-parallel",
        "2",
        "--servers",
        "dockyard",
        "--builds-output",
        str(output),
    )
    rows = _table_rows(output.read_text())
    assert [row.split("|")[1].strip() for row in rows] == [
        "git push → pullable, cold (s)",
        "git push → pullable, warm (s; 1 builds)",
        "2 builds, 4 at once: first push → last pullable (s)",
        "builds per minute, 4 at once",
    ]
    values = [float(row.split("|")[2]) for row in rows]  # a "—" (a failed measure) fails here
    assert all(value > 0 for value in values), rows


@pytest.mark.embedded_only
def test_quick_web_benchmark_times_every_heavy_page(tmp_path: Path) -> None:
    output = tmp_path / "latest-web.md"
    _run_bench(tmp_path, "--config", "web", "--servers", "dockyard", "--web-output", str(output))
    rows = _table_rows(output.read_text())
    pages = [row.split("|")[1].strip() for row in rows]
    assert pages == [
        "repository page, 200 tags",
        "tags tab page 1, 200 tags",
        "filesystem listing /, 2,000 files",
        "filesystem listing /data/d0010 (100 entries), 2,000 files",
        "diff a → b, 2,000 files each",
    ]
    for row in rows:
        cold, warm = (float(cell) for cell in row.split("|")[2:4])
        assert cold > 0, row
        assert warm > 0, row


def test_write_load_reports_rate_and_cpu_per_operation(server: DockyardServer) -> None:
    """``bench.writes`` drives each write phase against a live server and reports its rate and the server's CPU."""
    assert server.process is not None
    target = ["--port", str(server.port), "--pid", str(server.process.pid), "--clients", "2", "--seconds", "1"]
    run = subprocess.run(
        [sys.executable, "-m", "bench.writes", *target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [row["phase"] for row in rows] == ["tag", "mount", "image"]
    for row in rows:
        assert row["ops"] > 0, row
        assert row["cpu_ms_per_op"] > 0, row


@pytest.mark.embedded_only
def test_quick_scan_benchmark_measures_sboms_matching_and_rematching(tmp_path: Path) -> None:
    output = tmp_path / "latest-scan.md"
    _run_bench(tmp_path, "--config", "scan", "--scan-output", str(output))
    values = {row.split("|")[1].strip(): row.split("|")[2].strip() for row in _table_rows(output.read_text())}
    assert set(values) >= {
        "SBOM cold (index + read both layers)",
        "SBOM sharing the base layer",
        "match one image (scan)",
        "re-match of the images holding them",
    }
    assert values["advisories imported"] == "2,000"
    assert int(values["packages found"]) == 65  # 60 dpkg packages and 5 Python distributions
    assert 0 < int(values["images re-matched"]) < int(values["images in the index"])  # the index narrows it


@pytest.mark.embedded_only
def test_quick_proxy_benchmark_pulls_through_the_cache(tmp_path: Path) -> None:
    require_tool("docker-registry")
    output = tmp_path / "latest-proxy.md"
    _run_bench(tmp_path, "--config", "proxy", "--proxy-output", str(output))
    text = output.read_text()
    rows = _table_rows(text)
    assert [row.split("|")[1].strip() for row in rows] == [
        "direct from the upstream (docker-registry)",
        "local pull from Dockyard (a pushed repository)",
        "through the proxy, first pull (miss)",
        "through the proxy, second pull (hit)",
    ]
    rates = [float(row.split("|")[2].replace(",", "")) for row in rows]  # a "—" (a failed pull) fails here
    assert all(rate > 0 for rate in rates), rows
    assert "ERROR" not in text
