"""``dockyard webhook …`` on a fresh data directory, as the operator: adding (the secret printed once, stored
sealed with the server secret), listing per scope, test deliveries, the delivery list, redelivery, removal, and
errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from dockyard.auth.secrets import SecretBox
from dockyard.cli.common import parse_scope
from dockyard.cli.webhooks import default_name
from tests.unit.cli.test_accounts import Dockyard

URL = "http://127.0.0.1:9/hook"


@pytest.fixture
def dockyard(tmp_path: Path) -> Dockyard:
    run = Dockyard(tmp_path / "data")
    run("user", "create", "alice")
    run("org", "create", "acme", "--owner", "alice")
    run("team", "create", "acme", "devs")
    run("team", "grant", "acme", "devs", "acme/app", "read")  # creates the repository acme/app
    return run


def test_add_prints_the_secret_once_and_stores_it_sealed(dockyard: Dockyard) -> None:
    added = dockyard.json("webhook", "add", "acme", URL, "--name", "ci")
    hook, secret = added["webhook"], added["secret"]
    assert len(secret) == 43
    assert (hook["name"], hook["namespace"], hook["repository"], hook["url"]) == ("ci", "acme", None, URL)
    assert (hook["events"], hook["payload_format"], hook["active"], hook["has_auth_header"]) == (
        ["push"],
        "dockerhub",
        True,
        False,
    )
    assert hook["created_by"] == "open"
    ((sealed,),) = dockyard.sql("SELECT secret FROM webhooks WHERE uuid = ?", hook["id"])
    assert secret not in sealed
    key = (dockyard.data_dir / "secret.key").read_text().strip()  # the server secret the server will use
    assert SecretBox(key).open(sealed).decode() == secret
    listed = dockyard.json("webhook", "list", "acme")
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in json.dumps(listed)

    human = dockyard("webhook", "add", "acme", URL).stdout
    line = next(line for line in human.splitlines() if "shown once" in line)
    assert len(line.rsplit(": ", 1)[1]) == 43
    assert "X-Dockyard-Signature" in human
    assert "127.0.0.1" in dockyard("webhook", "list", "acme").stdout  # the default name is the host


def test_repository_webhooks_with_every_option(dockyard: Dockyard) -> None:
    first = dockyard.json("webhook", "add", "acme/app", URL, "--name", "first")["webhook"]
    added = dockyard.json(
        "webhook", "add", "acme/app", "https://hooks.example.com/x",
        "--event", "push", "--event", "tag_deleted", "--format", "cloudevents", "--tag-filter", "v*",
        "--auth-header", "Authorization: Bearer abc", "--after", first["id"], "--inactive",
    )["webhook"]  # fmt: skip
    assert added["repository"] == "acme/app"
    assert added["namespace"] == "acme"
    assert added["events"] == ["push", "tag_deleted"]
    assert (added["payload_format"], added["tag_filter"], added["after"]) == ("cloudevents", "v*", first["id"])
    assert (added["has_auth_header"], added["active"]) == (True, False)
    ((header,),) = dockyard.sql("SELECT auth_header FROM webhooks WHERE uuid = ?", added["id"])
    assert "abc" not in header
    assert [h["id"] for h in dockyard.json("webhook", "list", "acme/app")] == [first["id"], added["id"]]
    assert dockyard.json("webhook", "list", "acme") == []  # namespace-wide webhooks only
    assert "first" in dockyard("webhook", "list", "acme/app").stdout


def test_test_deliveries_redeliver_and_remove(dockyard: Dockyard) -> None:
    hook = dockyard.json("webhook", "add", "acme/app", URL)["webhook"]["id"]
    sent = dockyard.json("webhook", "test", hook)
    assert (sent["webhook"], sent["event"], sent["state"], sent["attempts"]) == (hook, "push", "pending", 0)
    body = json.loads(sent["request_body"])
    assert body["repository"]["repo_name"] == "acme/app"
    assert body["push_data"]["tag"] == "latest"
    again = dockyard.json("webhook", "redeliver", hook[:8], sent["id"][:8])  # unique starts of both ids
    assert again["id"] != sent["id"]
    assert (again["redelivery_of"], again["event_id"], again["request_body"]) == (
        sent["id"],
        sent["event_id"],
        sent["request_body"],
    )
    listed = dockyard.json("webhook", "deliveries", hook)
    assert [d["id"] for d in listed] == [again["id"], sent["id"]]  # newest first
    assert [d["id"] for d in dockyard.json("webhook", "deliveries", hook, "--limit", "1")] == [again["id"]]
    assert "queued test delivery" in dockyard("webhook", "test", hook).stdout
    assert "pending" in dockyard("webhook", "deliveries", hook).stdout
    assert dockyard.json("webhook", "rm", hook) == {"deleted": hook}
    assert dockyard.json("webhook", "list", "acme/app") == []
    assert dockyard.sql("SELECT count(*) FROM webhook_deliveries") == [(0,)]
    actions = [a for (a,) in dockyard.sql("SELECT action FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY id")]
    assert actions == ["webhook.create", "webhook.test", "webhook.redeliver", "webhook.test", "webhook.delete"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "acme", "ftp://example.com/x"), "url must be an http(s) URL"),
        (("add", "acme", "http://user:pw@example.com/x"), "auth_header"),
        (("add", "acme", URL, "--event", "pushed"), "unknown events"),
        (("add", "acme", URL, "--auth-header", "no colon"), "auth_header must be"),
        (("add", "acme", URL, "--after", "00000000-0000-0000-0000-000000000000"), "after must name"),
        (("add", "nobody", URL), "namespace not found"),
        (("list", "nobody"), "namespace not found"),
        (("rm", "00000000-0000-0000-0000-000000000000"), "webhook not found"),
        (("test", "nope"), "webhook not found"),
        (("deliveries", "nope"), "webhook not found"),
        (("redeliver", "nope", "nope"), "webhook not found"),
    ],
)
def test_errors_are_one_line(dockyard: Dockyard, args: tuple[str, ...], message: str) -> None:
    result = dockyard("webhook", *args, ok=False)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_unknown_format_and_bad_target_are_usage_errors(dockyard: Dockyard) -> None:
    assert dockyard("webhook", "add", "acme", URL, "--format", "xml", ok=False).exit_code == 2
    assert dockyard("webhook", "add", "acme/", URL, ok=False).exit_code == 2
    assert dockyard("webhook", "list", "/app", ok=False).exit_code == 2


def test_redeliver_unknown_delivery(dockyard: Dockyard) -> None:
    hook = dockyard.json("webhook", "add", "acme", URL)["webhook"]["id"]
    result = dockyard("webhook", "redeliver", hook, "nope", ok=False)
    assert "delivery not found" in result.output


def test_parse_scope_and_default_name() -> None:
    assert parse_scope("acme") == ("acme", None)
    assert parse_scope("acme/app") == ("acme", "acme/app")
    assert parse_scope("acme/a/b") == ("acme", "acme/a/b")
    assert parse_scope("library/alpine") == ("library", "alpine")
    with pytest.raises(click.BadParameter):
        parse_scope("acme/")
    assert default_name("https://ci.example.com:8443/x") == "ci.example.com"


def test_webhooks_are_named_by_id_prefixes(dockyard: Dockyard) -> None:
    hook = dockyard.json("webhook", "add", "acme/app", URL)["webhook"]
    assert "uuid" not in hook  # the API's field name
    prefix = hook["id"][:8]
    deliveries = dockyard.json("webhook", "deliveries", prefix)
    assert deliveries == []
    tested = dockyard.json("webhook", "test", prefix)
    assert "id" in tested
    assert "uuid" not in tested
    assert dockyard.json("webhook", "rm", prefix) == {"deleted": hook["id"]}
    unknown = dockyard("webhook", "rm", prefix, "--json", ok=False)
    assert unknown.exit_code == 1
    assert json.loads(unknown.stdout)["error"]["code"] == "not_found"
    too_short = dockyard("webhook", "rm", "ab", ok=False)
    assert too_short.exit_code == 1
