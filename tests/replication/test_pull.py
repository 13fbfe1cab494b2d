"""Pull replication from Debian's ``docker-registry`` on loopback: a manual run with filters and a namespace
mapping, a multi-arch index, a scheduled run, and a tag deleted upstream deleted here."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.proxy.conftest import ReferenceRegistry
from tests.replication.conftest import (
    TwoStepUploads,
    add_rule,
    push_index,
    remote_digest,
    settled,
    start_run,
    wait_run,
)
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.oci import push_image
from tests.support.server import DockyardServer


@pytest.fixture
def upstream(reference: ReferenceRegistry) -> Iterator[httpx.Client]:
    with TwoStepUploads(base_url=reference.url, timeout=30) as client:
        yield client


def test_pull_run_copies_what_the_filters_select(
    admin: HubAdmin, dockyard: DockyardServer, org: str, upstream: httpx.Client, reference: ReferenceRegistry
) -> None:
    app, other = unique("app"), unique("tool")
    one = push_image(upstream, f"vendor/{app}", "1.0")
    push_image(upstream, f"vendor/{app}", "latest")
    index, children = push_index(upstream, f"vendor/{app}", "1.1")
    push_image(upstream, f"vendor/{other}", "1.0")
    push_image(upstream, f"elsewhere/{app}", "1.0")
    rule = add_rule(
        admin,
        org,
        direction="pull",
        remote_url=reference.url,
        remote_namespace="vendor",
        repository_filter="app*",
        tag_filter="1.*",
        replicate_deletes=True,
    )
    run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"])
    assert run["state"] == "succeeded", run
    auth = ("admin", dockyard.ADMIN_PASSWORD)
    assert remote_digest(dockyard.url, f"{org}/{app}", "1.0", auth) == one.digest
    assert remote_digest(dockyard.url, f"{org}/{app}", "1.1", auth) == index
    for child in children:
        assert remote_digest(dockyard.url, f"{org}/{app}", child, auth) == child
    assert remote_digest(dockyard.url, f"{org}/{app}", "latest", auth) is None  # the tag filter
    tags = httpx.get(f"{dockyard.url}/v2/{org}/{other}/tags/list", auth=auth, timeout=30)
    assert tags.status_code in (401, 403, 404)  # the repository filter: never created
    assert {r["source"] for r in run["results"]} == {f"vendor/{app}:1.0", f"vendor/{app}:1.1"}

    # deleted upstream (distribution deletes by digest), then a run deletes it here too
    deleted = upstream.delete(f"/v2/vendor/{app}/manifests/{one.digest}")
    assert deleted.status_code == 202, deleted.text
    run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"])
    assert run["state"] == "succeeded", run
    assert run["deleted"] == 1
    assert remote_digest(dockyard.url, f"{org}/{app}", "1.0", auth) is None
    assert remote_digest(dockyard.url, f"{org}/{app}", "1.1", auth) == index
    assert {(r["source"], r["result"]) for r in run["results"]} == {
        (f"vendor/{app}:1.0", "deleted"),
        (f"vendor/{app}:1.1", "skipped"),
    }


def test_scheduled_pull_runs_by_itself(
    admin: HubAdmin, dockyard: DockyardServer, org: str, upstream: httpx.Client, reference: ReferenceRegistry
) -> None:
    app = unique("sched")
    image = push_image(upstream, f"{org}/{app}", "v1")  # no remote namespace: the same names both sides
    rule = add_rule(admin, org, direction="pull", remote_url=reference.url, trigger="schedule", schedule_seconds=3600)
    history = settled(admin, org, rule["name"])
    assert [run["trigger"] for run in history] == ["schedule"]
    assert history[0]["state"] == "succeeded", history
    assert remote_digest(dockyard.url, f"{org}/{app}", "v1", ("admin", dockyard.ADMIN_PASSWORD)) == image.digest


def test_unreachable_source_fails_the_run_after_its_attempts(
    admin: HubAdmin, org: str, reference: ReferenceRegistry
) -> None:
    rule = add_rule(admin, org, direction="pull", remote_url=reference.url)
    reference.stop()
    run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"], timeout=120)
    assert run["state"] == "failed"
    assert run["attempts"] == 10  # DOCKYARD_REPLICATION_MAX_ATTEMPTS
    assert "unreachable" in (run["error"] or ""), run
