"""``--json`` errors (``{"error": …}`` and a non-zero exit status) from the shared command class, the refusal to
create a database by accident, ``gc --json`` and ``sample-image``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dockyard.cli.main import main
from tests.unit.cli.test_accounts import Dockyard


def test_domain_errors_under_json_are_an_error_document(tmp_path: Path) -> None:
    dockyard = Dockyard(tmp_path / "data")
    result = dockyard("user", "disable", "nobody", "--json", ok=False)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "not_found"
    assert error["subject"] == "account"
    assert error["message"]
    plain = dockyard("user", "disable", "nobody", ok=False)
    assert plain.exit_code == 1
    assert plain.output.startswith("Error: ")


def test_usage_errors_under_json_are_an_error_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["user", "list", "--no-such-option", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {"code": "usage", "detail": None, "message": "No such option '--no-such-option'."}
    }
    gc = CliRunner().invoke(main, ["gc", "--grace-seconds", "soon", "--json"])
    assert gc.exit_code == 2
    assert json.loads(gc.stdout)["error"]["code"] == "usage"


def test_commands_refuse_to_create_a_database_unless_asked(tmp_path: Path) -> None:
    for command in (["user", "list"], ["gc"], ["token-key", "list"], ["sample-image", "--push", "admin/x"]):
        result = CliRunner().invoke(main, [*command, "--data-dir", str(tmp_path), "--json"])
        assert result.exit_code == 1, (command, result.output)
        error = json.loads(result.stdout)["error"]
        assert str(tmp_path.resolve()) in error["message"]
        assert "--init" in error["message"]
    assert list(tmp_path.iterdir()) == []
    created = CliRunner().invoke(main, ["user", "list", "--init", "--data-dir", str(tmp_path), "--json"])
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout) == []


def test_gc_json(tmp_path: Path) -> None:
    Dockyard(tmp_path)
    result = CliRunner().invoke(main, ["gc", "--dry-run", "-v", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert report["manifests"] == []
    assert report["blobs"] == []
    assert report["uploads"] == []


def test_every_option_has_help() -> None:
    import click

    ctx = click.Context(main)
    missing: list[str] = []

    def walk(command: click.Command, path: str) -> None:
        for parameter in command.params:
            if isinstance(parameter, click.Option) and not parameter.help:
                missing.append(f"{path} {parameter.opts[0]}")
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, f"{path} {name}")

    walk(main, "dockyard")
    assert missing == []


def test_sample_image_layout_and_push(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    written = CliRunner().invoke(main, ["sample-image", "--output", str(layout), "--tag", "v1", "--json"])
    assert written.exit_code == 0, written.output
    digest = json.loads(written.stdout)["digest"]
    index = json.loads((layout / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    assert (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).exists()

    dockyard = Dockyard(tmp_path / "data")
    dockyard("user", "create", "admin", "--admin")
    pushed = dockyard.json("sample-image", "--push", "admin/hello:v1")
    assert pushed == {"repository": "admin/hello", "tag": "v1", "digest": digest}
    assert dockyard.sql("SELECT t.name FROM tags t") == [("v1",)]
    assert len(dockyard.sql("SELECT digest FROM manifests")) == 3
