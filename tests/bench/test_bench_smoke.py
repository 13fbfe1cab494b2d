"""The side-by-side benchmark in --quick mode against both servers: proves the harness works end to end."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.postgres import require_postgres
from tests.support.server import REPO_ROOT
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
