"""The side-by-side benchmark in --quick mode against both servers: proves the harness works end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import REPO_ROOT
from tests.support.tools import require_tool


# The benchmark always runs Dockyard as `dockyard serve` with default settings (SQLite + filesystem), whatever
# backend the suite is testing: once, in the embedded pass, is enough.
@pytest.mark.embedded_only
def test_quick_benchmark_runs_against_both_servers(tmp_path: Path) -> None:
    require_tool("docker-registry")
    require_tool("wrk")
    output = tmp_path / "latest.md"
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--output", str(output), "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, f"bench.run failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    table = output.read_text()
    assert "| measure | dockyard | reference | ratio |" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) >= 20
    # Every measure has a number for both servers ("—" marks a measurement that failed).
    missing = [row for row in rows if any(cell.strip() == "—" for cell in row.split("|")[2:4])]
    assert not missing, "measures without a value:\n" + "\n".join(missing)
