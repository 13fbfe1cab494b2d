from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dockyard import __version__
from dockyard.cli.main import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_db_upgrade_creates_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dockyard.db").exists()
    again = CliRunner().invoke(main, ["db", "upgrade", "--data-dir", str(tmp_path)])
    assert again.exit_code == 0


def test_serve_rejects_bad_settings_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_WORKERS", "zero")
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code != 0
    assert "workers" in result.output
    assert "Traceback" not in result.output
