"""``dockyard worker`` is registered and ``serve --no-jobs`` exists (the worker's behaviour is tested as a real
process in tests/integration/jobs/test_worker.py)."""

from __future__ import annotations

from click.testing import CliRunner

from dockyard.cli.main import main


def test_worker_command_is_listed_and_documented() -> None:
    assert "worker" in CliRunner().invoke(main, ["--help"]).output
    result = CliRunner().invoke(main, ["worker", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--concurrency", "--grace", "--config", "--data-dir"):
        assert option in result.output


def test_serve_can_leave_jobs_to_workers() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--no-jobs" in result.output
