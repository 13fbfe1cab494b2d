"""``dockyard token-key rotate|list`` on a fresh data directory."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dockyard.cli.main import main


def run(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["token-key", *args, "--data-dir", str(data_dir), "--init"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_rotate_adds_a_signing_key_and_keeps_the_old_one_verifying(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = json.loads(run(data, "rotate"))["kid"]
    second = json.loads(run(data, "rotate"))["kid"]
    assert first != second
    kids = {key["kid"] for key in json.loads(run(data, "list"))["keys"]}
    # The key made on first use, and both rotations: all still verify tokens they signed.
    assert {first, second} <= kids
    assert len(kids) == 3
    assert (data / "secret.key").stat().st_mode & 0o777 == 0o600
