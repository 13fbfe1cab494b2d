"""``dockyard replication add|list|run|history|rm`` on a fresh data directory, as the operator: the remote's
password read from standard input and stored sealed, a run queued as a job, the SSRF guard and validation as
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.auth.secrets import SecretBox
from tests.unit.cli.test_accounts import Dockyard


@pytest.fixture
def dockyard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dockyard:
    monkeypatch.setenv("DOCKYARD_REPLICATION_ALLOWED_HOSTS", "127.0.0.1")
    run = Dockyard(tmp_path / "data")
    run("user", "create", "alice")
    run("org", "create", "acme", "--owner", "alice")
    return run


def test_add_list_run_history_remove(dockyard: Dockyard) -> None:
    added = dockyard.json(
        "replication",
        "add",
        "acme",
        "to-mirror",
        "http://127.0.0.1:5000/",
        "--remote-namespace",
        "mirror",
        "--tags",
        "v*",
        "--trigger",
        "event",
        "--deletes",
        "--username",
        "bot",
        "--password-stdin",
        stdin="s3cret\n",
    )
    assert (added["name"], added["direction"], added["remote_url"], added["trigger"]) == (
        "to-mirror",
        "push",
        "http://127.0.0.1:5000",
        "event",
    )
    assert added["has_password"] is True
    assert added["replicate_deletes"] is True
    assert "s3cret" not in json.dumps(added)
    ((sealed,),) = dockyard.sql("SELECT password FROM replication_rules WHERE name = 'to-mirror'")
    key = (dockyard.data_dir / "secret.key").read_text().strip()
    assert SecretBox(key).open(sealed) == b"s3cret"

    dockyard(
        "replication", "add", "acme", "from-up", "127.0.0.1:5000", "--pull", "--trigger", "schedule", "--every", "600"
    )
    listed = dockyard.json("replication", "list", "acme")
    assert [(r["name"], r["direction"], r["trigger"]) for r in listed] == [
        ("from-up", "pull", "schedule"),
        ("to-mirror", "push", "event"),
    ]

    run = dockyard.json("replication", "run", "acme", "to-mirror")
    assert (run["state"], run["trigger"]) == ("queued", "manual")
    assert dockyard.sql("SELECT kind, payload FROM jobs") == [
        ("replication.run", json.dumps({"run": run["id"]}, separators=(",", ":")))
    ]
    history = dockyard.json("replication", "history", "acme", "to-mirror")
    assert [h["id"] for h in history] == [run["id"]]
    detail = dockyard.json("replication", "history", "acme", "to-mirror", "--run", str(run["id"]))
    assert detail["results"] == []

    dockyard("replication", "rm", "acme", "to-mirror")
    assert [r["name"] for r in dockyard.json("replication", "list", "acme")] == ["from-up"]
    assert dockyard.sql("SELECT count(*) FROM replication_runs") == [(0,)]
    actions = [row[0] for row in dockyard.sql("SELECT action FROM audit_log WHERE namespace = 'acme' ORDER BY id")]
    assert actions[-4:] == ["replication.create", "replication.create", "replication.run", "replication.delete"]


def test_errors_are_one_line(dockyard: Dockyard) -> None:
    assert "namespace not found" in dockyard("replication", "list", "nobody", ok=False).output
    refused = dockyard("replication", "add", "acme", "meta", "http://169.254.169.254", ok=False).output
    assert "may not be reached" in refused
    pull_on_events = dockyard(
        "replication", "add", "acme", "r", "127.0.0.1:5000", "--pull", "--trigger", "event", ok=False
    )
    assert "only push rules run on events" in pull_on_events.output
    assert (
        "needs schedule_seconds"
        in dockyard("replication", "add", "acme", "r", "127.0.0.1:5000", "--trigger", "schedule", ok=False).output
    )
    dockyard("replication", "add", "acme", "r", "127.0.0.1:5000")
    assert "exists" in dockyard("replication", "add", "acme", "r", "127.0.0.1:5000", ok=False).output
    assert "no such replication rule" in dockyard("replication", "run", "acme", "nope", ok=False).output
    assert (
        "--password-stdin"
        in dockyard("replication", "add", "acme", "s", "127.0.0.1:5000", "--username", "me", ok=False).output
    )
