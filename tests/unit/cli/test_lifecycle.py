"""``dockyard quota …`` and ``dockyard retention …`` on a fresh data directory, as the operator: limits set, shown
(one namespace and all) and cleared, a recount, a namespace retention policy set from ``--rule`` options and shown,
bad input refused in one line, and the audit entries. The database is the test backend's."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from dockyard.cli.lifecycle import parse_size
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

    dockyard("quota", "set", "acme", "--storage", "unlimited")
    assert json.loads(dockyard("quota", "show", "acme", "--json").output)["storage_limit"] is None
    assert json.loads(dockyard("quota", "recount", "--json").output)["namespaces"] >= 1

    refused = dockyard("quota", "set", "acme", "--storage", "lots", ok=False)
    assert refused.exit_code != 0
    assert "500MB" in refused.output
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


@pytest.mark.parametrize(
    ("text", "size"),
    [("1234", 1234), ("500MB", 500_000_000), ("10GiB", 10 * 1024**3), ("1.5kib", 1536), ("unlimited", None)],
)
def test_parse_size(text: str, size: int | None) -> None:
    assert parse_size(text) == size


def test_parse_size_refuses_nonsense() -> None:
    with pytest.raises(click.BadParameter):
        parse_size("10 parsecs")
