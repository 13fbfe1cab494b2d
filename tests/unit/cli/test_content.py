"""``dockyard repo list|delete``, ``tag list|delete``, ``audit`` and ``whoami`` on a data directory with the
sample image pushed (as the operator, through the Hub's services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.cli.test_accounts import Dockyard


@pytest.fixture
def dockyard(tmp_path: Path) -> Dockyard:
    run = Dockyard(tmp_path / "data")
    run("user", "create", "alice")
    run("sample-image", "--push", "alice/hello:v1")
    run("sample-image", "--push", "alice/hello:v2")
    return run


def test_repo_and_tag_listing_and_deletion(dockyard: Dockyard) -> None:
    (listed,) = dockyard.json("repo", "list", "alice")
    assert listed["full_name"] == "alice/hello"
    tags = dockyard.json("tag", "list", "alice/hello")
    assert sorted(t["name"] for t in tags) == ["v1", "v2"]
    assert all(isinstance(t["id"], int) for t in tags)
    untagged = dockyard.json("tag", "delete", "alice/hello:v1")
    assert untagged == {"deleted": True, "repository": "alice/hello", "tag": "v1"}
    assert [t["name"] for t in dockyard.json("tag", "list", "alice/hello")] == ["v2"]
    missing = dockyard("tag", "delete", "alice/hello:v1", "--json", ok=False)
    assert missing.exit_code == 1
    refused = dockyard("repo", "delete", "alice/hello", ok=False)  # not on a terminal, no --yes
    assert refused.exit_code == 1
    assert dockyard.json("repo", "list", "alice") != []
    assert dockyard.json("repo", "delete", "alice/hello", "--yes") == {"deleted": True, "repository": "alice/hello"}
    assert dockyard.json("repo", "list", "alice") == []


def test_audit_and_whoami(dockyard: Dockyard) -> None:
    dockyard("tag", "delete", "alice/hello:v1")
    entries = dockyard.json("audit", "alice")
    actions = [entry["action"] for entry in entries]
    assert "repo.create" in actions
    assert actions == [entry["action"] for entry in sorted(entries, key=lambda e: e["timestamp"], reverse=True)]
    only = dockyard.json("audit", "alice", "--action", "repo.create", "--limit", "1")
    assert [entry["action"] for entry in only] == ["repo.create"]
    me = dockyard.json("whoami")
    assert me["actor"] == "operator"
    assert me["data_dir"] == str(dockyard.data_dir.resolve())
