"""``dockyard proxy add|list|rm`` on a fresh data directory, as the operator: the upstream password read from
standard input and stored sealed, Docker Hub's names normalised, errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.auth.secrets import SecretBox
from tests.unit.cli.test_accounts import Dockyard


@pytest.fixture
def dockyard(tmp_path: Path) -> Dockyard:
    run = Dockyard(tmp_path / "data")
    run("user", "create", "alice")
    run("org", "create", "dockerhub", "--owner", "alice")
    run("org", "create", "ghcrio", "--owner", "alice")
    return run


def test_add_list_remove(dockyard: Dockyard) -> None:
    added = dockyard.json(
        "proxy", "add", "dockerhub", "docker.io", "--username", "me", "--password-stdin", stdin="tok\n"
    )
    assert (added["namespace"], added["upstream_url"], added["username"]) == (
        "dockerhub",
        "https://registry-1.docker.io",
        "me",
    )
    assert added["has_password"] is True
    assert added["tag_ttl_seconds"] == 300
    assert "tok" not in json.dumps(added)
    ((sealed,),) = dockyard.sql("SELECT password FROM proxies WHERE namespace = 'dockerhub'")
    key = (dockyard.data_dir / "secret.key").read_text().strip()
    assert SecretBox(key).open(sealed) == b"tok"

    dockyard("proxy", "add", "ghcrio", "https://ghcr.io/", "--tag-ttl", "60")
    listed = dockyard.json("proxy", "list")
    assert [(p["namespace"], p["upstream_url"], p["tag_ttl_seconds"]) for p in listed] == [
        ("dockerhub", "https://registry-1.docker.io", 300),
        ("ghcrio", "https://ghcr.io", 60),
    ]
    assert "ghcr.io" in dockyard("proxy", "list").stdout

    dockyard("proxy", "rm", "ghcrio")
    assert [p["namespace"] for p in dockyard.json("proxy", "list")] == ["dockerhub"]
    actions = [row[0] for row in dockyard.sql("SELECT action FROM audit_log WHERE namespace = 'ghcrio' ORDER BY id")]
    assert actions[-2:] == ["proxy.create", "proxy.delete"]


def test_errors_are_one_line(dockyard: Dockyard) -> None:
    assert "no such namespace" in dockyard("proxy", "add", "nobody", "docker.io", ok=False).output
    dockyard("proxy", "add", "dockerhub", "docker.io")
    assert "a proxy already" in dockyard("proxy", "add", "dockerhub", "docker.io", ok=False).output
    assert "not a proxy" in dockyard("proxy", "rm", "ghcrio", ok=False).output
    assert "--password-stdin" in dockyard("proxy", "add", "ghcrio", "ghcr.io", "--username", "me", ok=False).output
    assert "http(s) URL" in dockyard("proxy", "add", "ghcrio", "ftp://ghcr.io", ok=False).output
