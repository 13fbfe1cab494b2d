"""``dockyard quota …`` and ``dockyard retention …`` on a fresh data directory, as the operator: limits set, shown
(one namespace and all) and cleared, a recount, a namespace retention policy set from ``--rule`` options and shown,
bad input refused in one line, and the audit entries; a repository's retention runs (dry, real, then of the
manifests they left untagged) and their history as printed for people. The database is the test backend's."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
import pytest

from dockyard.cli.lifecycle import parse_size
from dockyard.core.sample_image import build_sample_image
from tests.support.cli_tables import tables
from tests.unit.cli.test_trust import Deployment


@pytest.fixture
def dockyard(tmp_path: Path) -> Deployment:
    return Deployment(tmp_path / "data")


def test_quota_set_show_clear_and_recount(dockyard: Deployment) -> None:
    shown = json.loads(dockyard("quota", "set", "acme", "--storage", "1GiB", "--repositories", "3", "--json").output)
    assert shown == {
        "namespace": "acme",
        "storage_bytes": 0,
        "repository_count": 0,
        "storage_limit": 1024**3,
        "repository_limit": 3,
        "soft_percent": 80,
    }
    dockyard("quota", "set", "acme", "--soft-percent", "90")  # the limits left out stay
    one = json.loads(dockyard("quota", "show", "acme", "--json").output)
    assert (one["storage_limit"], one["repository_limit"], one["soft_percent"]) == (1024**3, 3, 90)
    every = json.loads(dockyard("quota", "show", "--json").output)
    assert "acme" in ({u["namespace"] for u in every} if isinstance(every, list) else {every["namespace"]})

    dockyard("quota", "set", "acme", "--storage", "unlimited", "--repositories", "unlimited")
    cleared = json.loads(dockyard("quota", "show", "acme", "--json").output)
    assert (cleared["storage_limit"], cleared["repository_limit"]) == (None, None)
    recounted = json.loads(dockyard("quota", "recount", "--json").output)["namespaces"]
    assert recounted >= 1
    assert dockyard("quota", "recount").output == f"recounted {recounted} namespace(s)\n"

    refused = dockyard("quota", "set", "acme", "--storage", "lots", ok=False)
    assert refused.exit_code != 0
    assert "500MB" in refused.output
    refused = dockyard("quota", "set", "acme", "--repositories", "a few", ok=False)
    assert refused.exit_code != 0
    assert "a number of repositories, or unlimited" in refused.output
    assert dockyard.audit_actions("quota.%") == ["quota.update"] * 3


def test_retention_policy_from_rule_options(dockyard: Deployment) -> None:
    dockyard("retention", "set", "acme", "--rule", "v*:latestPushedK=3", "--rule", "release-*:always", "--keep-signed")
    policy = json.loads(dockyard("retention", "show", "acme", "--json").output)
    assert policy["rules"] == [
        {"pattern": "v*", "template": "latestPushedK", "value": 3},
        {"pattern": "release-*", "template": "always", "value": 0},
    ]
    assert (policy["keep_signed"], policy["untagged_days"], policy["scheduled"]) == (True, None, True)

    bad = dockyard("retention", "set", "acme", "--rule", "v*:keepSome=3", ok=False)
    assert bad.exit_code != 0
    assert "TEMPLATE one of" in bad.output
    assert dockyard("retention", "run", "acme", ok=False).exit_code != 0  # runs are per repository
    assert dockyard.audit_actions("retention.%") == ["retention.policy.change"]


def test_retention_runs_and_history_for_people(dockyard: Deployment) -> None:
    dockyard.env["COLUMNS"] = "250"  # no cell of the history folds onto a second line
    for tag in ("v1", "v2", "release"):
        dockyard("sample-image", "--push", f"acme/app:{tag}")
    sample = build_sample_image()  # what sample-image pushed: an index of two platform images
    index = sample.index_digest
    dockyard("retention", "set", "acme/app", "--rule", "release:always", "--untagged-days", "0", "--on-demand")

    def tags() -> list[str]:
        return sorted(t["name"] for t in json.loads(dockyard("tag", "list", "acme/app", "--json").stdout))

    def run(*options: str) -> tuple[list[str], str]:
        """``retention run acme/app`` for people: the lines naming what it deleted (sorted), and its summary."""
        *deleted, summary = dockyard("retention", "run", "acme/app", *options).stdout.splitlines()
        return sorted(deleted), summary

    # v1 and v2 are no rule's; release keeps the image tagged, so no blob is freed.
    planned = json.loads(dockyard("retention", "run", "acme/app", "--dry-run", "--json").stdout)
    assert (planned["dry_run"], planned["tags_deleted"], planned["manifests"]) == (True, 2, [])
    assert sorted((t["tag"], t["digest"]) for t in planned["tags"]) == [("v1", index), ("v2", index)]
    assert run("--dry-run") == (
        [f"would delete tag acme/app:v1 ({index})", f"would delete tag acme/app:v2 ({index})"],
        "would delete 2 tag(s), 0 untagged manifest(s); 0 bytes for garbage collection to free",
    )
    assert tags() == ["release", "v1", "v2"]
    assert run() == (
        [f"deleted tag acme/app:v1 ({index})", f"deleted tag acme/app:v2 ({index})"],
        "deleted 2 tag(s), 0 untagged manifest(s); 0 bytes for garbage collection to free",
    )
    assert tags() == ["release"]

    # Untagged, the index goes (untagged_days 0), and in the same run the platform images only it listed, with the
    # bytes of their configs and layers; a further run finds nothing.
    dockyard("tag", "delete", "acme/app:release")
    freed = sum(len(data) for digest, data in sample.blobs.items() if digest not in sample.manifests)
    gone = len(sample.manifests) + 1
    assert run() == (
        sorted(f"deleted manifest acme/app@{digest}" for digest in [index, *sample.manifests]),
        f"deleted 0 tag(s), {gone} untagged manifest(s); {freed} bytes for garbage collection to free",
    )
    assert run() == ([], "deleted 0 tag(s), 0 untagged manifest(s); 0 bytes for garbage collection to free")

    (history,) = tables(dockyard("retention", "history", "acme/app").stdout)
    assert history.title == "retention runs of acme/app"
    assert history.header == ["id", "started", "trigger", "dry run", "tags", "manifests", "bytes freed"]
    runs = json.loads(dockyard("retention", "history", "acme/app", "--json").stdout)
    assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True)  # newest first
    # dry run, tags, manifests, bytes freed: of the runs above, the last first
    expected = [
        ["no", "0", "0", "0"],
        ["no", "0", str(gone), str(freed)],
        ["no", "2", "0", "0"],
        ["yes", "2", "0", "0"],
        ["yes", "2", "0", "0"],
    ]
    assert history.rows == [
        [str(r["id"]), datetime.fromisoformat(r["started_at"]).strftime("%Y-%m-%d %H:%M UTC"), "manual", *counts]
        for r, counts in zip(runs, expected, strict=True)
    ]

    for command in ("run", "history"):
        refused = dockyard("retention", command, "acme", ok=False)
        assert refused.exit_code != 0
        assert "runs are per repository: NAMESPACE/REPOSITORY" in refused.output
    refused = dockyard("retention", "show", "acme/", ok=False)
    assert refused.exit_code != 0
    assert "expected NAMESPACE or NAMESPACE/REPOSITORY" in refused.output


@pytest.mark.parametrize(
    ("text", "size"),
    [("1234", 1234), ("500MB", 500_000_000), ("10GiB", 10 * 1024**3), ("1.5kib", 1536), ("unlimited", None)],
)
def test_parse_size(text: str, size: int | None) -> None:
    assert parse_size(text) == size


def test_parse_size_refuses_nonsense() -> None:
    with pytest.raises(click.BadParameter):
        parse_size("10 parsecs")
