"""``dockyard build link|rule add|rule list|rule rm|run|list|logs --follow`` against a running server's deployment:
the operator links a repository, adds a rule, builds now and follows the log to the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dockyard.cli.main import main
from tests.support.app_server import AppServer
from tests.support.build_executor import PIPELINE_ENV
from tests.support.checks import wait_for
from tests.support.gitserver import GitServer
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.hub_api import People, create_repository


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    """This module's servers run their builds on the test executor."""
    return {**SIGN_IN_OFTEN, **PIPELINE_ENV}


def cli(server: AppServer, *args: str) -> str:
    env = {name: value for name, value in server.env.items() if name.startswith("DOCKYARD_")}
    result = CliRunner().invoke(main, [*args, "--data-dir", str(server.data_dir)], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def as_json(server: AppServer, *args: str) -> Any:
    return json.loads(cli(server, *args, "--json"))


def test_the_operator_links_adds_a_rule_builds_and_follows_the_log(
    people: People, secure_server: AppServer, gitserver: GitServer, tmp_path: Path
) -> None:
    owner = people.user("op")
    create_repository(owner, "cli")
    target = f"{owner.name}/cli"
    tree = gitserver.create(f"{owner.name}-cli", tmp_path / "cli")
    tree.commit({"Dockerfile": "ECHO from the cli\n"}, "initial")
    tree.push("main")

    linked = as_json(secure_server, "build", "link", target, tree.url)
    assert linked["link"]["url"] == tree.url
    assert linked["webhook_secret"]
    assert "/trigger/" in linked["trigger_url"]
    rule = as_json(secure_server, "build", "rule", "add", target, "--source", "main", "--tag", "{sourceref}")
    assert [r["id"] for r in as_json(secure_server, "build", "rule", "list", target)] == [rule["id"]]

    (build,) = as_json(secure_server, "build", "run", target, "--ref", "main", "--rule", rule["id"][:8])["builds"]
    log = cli(secure_server, "build", "logs", build[:8], "--follow")  # ids are taken by a unique start too
    assert "STEP 1/1: ECHO from the cli" in log
    assert f"pushed {target}:main" in log
    (listed,) = as_json(secure_server, "build", "list", target)
    assert (listed["id"], listed["state"], listed["tags"]) == (build, "succeeded", ["main"])

    # the log is archived to blob storage, where garbage collection keeps it (no repository links that blob)
    archived = wait_for(
        lambda: secure_server.query_sql("SELECT log_digest FROM builds WHERE uuid = :b", b=build)[0][0],
        what="the archived log",
    )
    cli(secure_server, "gc", "--grace-seconds", "0")
    assert secure_server.query_sql("SELECT digest FROM blobs WHERE digest = :d", d=archived)
    assert "STEP 1/1: ECHO from the cli" in owner.api.get(f"/api/v2/repositories/{target}/builds/{build}/logs").text

    assert as_json(secure_server, "build", "rule", "rm", target, rule["id"][:6].upper()) == {"removed": rule["id"]}
    assert as_json(secure_server, "build", "rule", "list", target) == []
    tags = owner.registry.get(f"/v2/{target}/tags/list").json()["tags"]
    assert tags == ["main"]
