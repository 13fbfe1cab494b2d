"""Retention against a running server (SQLite and PostgreSQL: ``DOCKYARD_TEST_BACKEND``): a repository of 200 tags
whose push and pull times the test sets, a policy whose outcome is worked out by hand below, a dry run that lists
exactly those tags and deletes nothing, a real run that deletes them through the registry (``tag.deleted`` events),
keeps the protected ones (a keep pattern, a signed image) and deletes an old untagged manifest, and the history;
an untagged multi-platform image goes in one run, its platforms with its index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.oci import OCI_INDEX, OCI_MANIFEST, canonical, descriptor, push_image, sha256, unique_name
from tests.support.server import DockyardServer

V_TAGS = 190  # v0 … v189, and keep-0 … keep-9: 200 tags
TAGS_PER_IMAGE = 4


def _at(server: DockyardServer, when: datetime) -> Any:
    """A timestamp parameter as each engine's column stores it."""
    if server.database_url.startswith("sqlite"):
        return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return when


def _set_times(server: DockyardServer, repo: str, tag: str, pushed: datetime, pulled: datetime | None) -> None:
    changed = server.execute_sql(
        "UPDATE tags SET updated_at = :pushed, last_pulled_at = :pulled WHERE name = :tag "
        "AND repository_id = (SELECT id FROM repositories WHERE name = :repo)",
        pushed=_at(server, pushed),
        pulled=None if pulled is None else _at(server, pulled),
        tag=tag,
        repo=repo,
    )
    assert changed == 1


def _tag_all(client: httpx.Client, repo: str, tags: list[str], manifest: bytes) -> None:
    for tag in tags:
        response = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201, response.text


def _tags(client: httpx.Client, repo: str) -> set[str]:
    response = client.get(f"/v2/{repo}/tags/list", params={"n": 1000})
    assert response.status_code == 200, response.text
    return set(response.json()["tags"] or [])


def _expected_kept() -> set[str]:
    """The v-tags the policy keeps (see the rules in the test)."""
    latest_pushed = {f"v{i}" for i in range(10)}  # v*: latestPushedK 10 — v_i was pushed i½ days ago
    latest_pulled = {"v5", "v15", "v25", "v35", "v45"}  # v*: latestPulledN 5 — v_i (i % 10 == 5) pulled i hours ago
    pushed_recently = {"v1", *(f"v{i}" for i in range(10, 20))}  # v1*: nDaysSinceLastPush 20 — i ≤ 19
    signed = {f"v{i}" for i in range(148, 152)}  # the image of v148 … v151 has a cosign signature (keep_signed)
    return latest_pushed | latest_pulled | pushed_recently | signed


def test_retention_dry_run_then_run_deletes_exactly_the_predicted_tags(
    server: DockyardServer, client: httpx.Client
) -> None:
    ns, short = unique_name("ret").split("/")[1], "app"
    repo = f"{ns}/{short}"
    now = datetime.now(UTC)
    v_tags = [f"v{i}" for i in range(V_TAGS)]
    keep_tags = [f"keep-{j}" for j in range(10)]
    digests: dict[str, str] = {}
    for start in range(0, V_TAGS, TAGS_PER_IMAGE):
        image = push_image(client, repo, v_tags[start], seed=f"{ns}-{start}")
        _tag_all(client, repo, v_tags[start + 1 : start + TAGS_PER_IMAGE], image.manifest)
        digests.update(dict.fromkeys(v_tags[start : start + TAGS_PER_IMAGE], image.digest))
    kept_image = push_image(client, repo, keep_tags[0], seed=f"{ns}-keep")
    _tag_all(client, repo, keep_tags[1:], kept_image.manifest)
    assert len(_tags(client, repo)) == 200

    # A cosign signature (tag scheme) of the image tagged v148 … v151.
    signed = digests["v150"]
    signature = push_image(client, repo, f"sha256-{signed.removeprefix('sha256:')}.sig", seed=f"{ns}-sig")
    # Two untagged manifests: one old enough for untagged_days, one fresh.
    old_untagged = push_image(client, repo, None, seed=f"{ns}-old-untagged")
    fresh_untagged = push_image(client, repo, None, seed=f"{ns}-fresh-untagged")
    server.execute_sql(
        "UPDATE manifests SET created_at = :t WHERE digest = :d",
        t=_at(server, now - timedelta(days=30)),
        d=old_untagged.digest,
    )

    for i, tag in enumerate(v_tags):
        pulled = now - timedelta(hours=i) if i % 10 == 5 else None
        _set_times(server, repo, tag, now - timedelta(days=i, hours=12), pulled)
    for tag in keep_tags:
        _set_times(server, repo, tag, now - timedelta(days=500), None)

    policy: dict[str, Any] = {
        "rules": [
            {"pattern": "v*", "template": "latestPushedK", "value": 10},
            {"pattern": "v*", "template": "latestPulledN", "value": 5},
            {"pattern": "v1*", "template": "nDaysSinceLastPush", "value": 20},
            {"pattern": "keep-*", "template": "always"},
        ],
        "keep_signed": True,
        "untagged_days": 10,
        "scheduled": False,
    }
    base = f"/api/v2/namespaces/{ns}/repositories/{short}/retention"
    response = client.put(base, json=policy)
    assert response.status_code == 200, response.text
    assert response.json()["inherited"] is False
    shown = client.get(base)
    assert shown.status_code == 200, shown.text
    assert shown.json()["rules"] == [{**r, "value": r.get("value", 0)} for r in policy["rules"]]

    # Tags an immutability rule covers are never deleted by retention (Docker Hub's repository setting).
    immutable = {f"v{i}" for i in range(170, 180)}
    settings = {"immutable_tags_settings": {"enabled": True, "rules": ["v17[0-9]"]}}
    patched = client.patch(f"/api/v2/namespaces/{ns}/repositories/{short}", json=settings)
    assert patched.status_code == 200, patched.text
    expected = sorted(set(v_tags) - _expected_kept() - immutable)
    assert len(expected) == V_TAGS - len(_expected_kept() | immutable)

    dry = client.post(f"{base}/runs", json={"dry_run": True})
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert plan["dry_run"] is True
    assert sorted(t["tag"] for t in plan["tags"]) == expected
    assert all(t["digest"] == digests[t["tag"]] for t in plan["tags"])
    assert plan["manifests"] == [old_untagged.digest]
    assert plan["bytes_freed"] > 0
    assert len(_tags(client, repo)) == 201  # nothing deleted

    done = client.post(f"{base}/runs", json={})
    assert done.status_code == 200, done.text
    result = done.json()
    assert result["dry_run"] is False
    assert sorted(t["tag"] for t in result["tags"]) == expected
    assert result["tags_deleted"] == len(expected)
    assert result["manifests_deleted"] == 1
    assert result["bytes_freed"] == plan["bytes_freed"]

    remaining = _tags(client, repo)
    assert remaining == (set(v_tags) - set(expected)) | set(keep_tags) | {f"sha256-{signed[7:]}.sig"}
    assert client.get(f"/v2/{repo}/manifests/{old_untagged.digest}").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/{fresh_untagged.digest}").status_code == 200
    assert client.get(f"/v2/{repo}/manifests/{signature.digest}").status_code == 200

    deleted_events = server.query_sql(
        "SELECT tag, actor FROM events WHERE type = 'tag.deleted' AND repository = :repo", repo=repo
    )
    assert sorted(tag for tag, _ in deleted_events) == expected
    assert {actor for _, actor in deleted_events} == {"dockyard-retention"}
    manifest_events = server.query_sql(
        "SELECT digest FROM events WHERE type = 'manifest.deleted' AND repository = :repo", repo=repo
    )
    assert [d for (d,) in manifest_events] == [old_untagged.digest]

    history = client.get(f"{base}/runs").json()
    assert history["count"] == 2
    assert [run["dry_run"] for run in history["results"]] == [False, True]
    assert history["results"][0]["tags_deleted"] == len(expected)

    # Nothing left to delete: a second run deletes nothing.
    again = client.post(f"{base}/runs", json={}).json()
    assert (again["tags_deleted"], again["manifests_deleted"]) == (0, 0)


def test_a_repository_follows_its_namespace_policy_and_no_rules_keep_everything(
    server: DockyardServer, client: httpx.Client
) -> None:
    ns = unique_name("retns").split("/")[1]
    repo = f"{ns}/web"
    for i in range(3):
        push_image(client, repo, f"t{i}", seed=f"{ns}-{i}")
    base = f"/api/v2/namespaces/{ns}/repositories/web/retention"
    assert client.post(f"{base}/runs", json={"dry_run": True}).json()["tags"] == []  # no policy: keep all

    response = client.put(
        f"/api/v2/namespaces/{ns}/retention",
        json={"rules": [{"pattern": "*", "template": "latestPushedK", "value": 1}]},
    )
    assert response.status_code == 200, response.text
    effective = client.get(base).json()
    assert effective["inherited"] is True
    for i in range(3):
        _set_times(server, repo, f"t{i}", datetime.now(UTC) - timedelta(days=i), None)
    plan = client.post(f"{base}/runs", json={"dry_run": True}).json()
    assert sorted(t["tag"] for t in plan["tags"]) == ["t1", "t2"]

    bad = client.put(base, json={"rules": [{"pattern": "*", "template": "keepEverything"}]})
    assert bad.status_code == 422


def test_an_untagged_multi_platform_image_goes_in_one_run_with_its_platforms(
    server: DockyardServer, client: httpx.Client
) -> None:
    ns = unique_name("retidx").split("/")[1]
    repo = f"{ns}/multi"
    platforms = [push_image(client, repo, None, seed=f"{ns}-{arch}") for arch in ("amd64", "arm64")]
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(OCI_MANIFEST, p.manifest, platform={"os": "linux", "architecture": arch})
                for p, arch in zip(platforms, ("amd64", "arm64"), strict=True)
            ],
        }
    )
    pushed = client.put(f"/v2/{repo}/manifests/{sha256(index)}", content=index, headers={"Content-Type": OCI_INDEX})
    assert pushed.status_code == 201, pushed.text
    kept = push_image(client, repo, "latest", seed=f"{ns}-kept")
    month_ago = _at(server, datetime.now(UTC) - timedelta(days=30))
    for digest in [sha256(index), kept.digest, *(p.digest for p in platforms)]:
        server.execute_sql("UPDATE manifests SET created_at = :t WHERE digest = :d", t=month_ago, d=digest)

    base = f"/api/v2/namespaces/{ns}/repositories/multi/retention"
    assert client.put(base, json={"rules": [], "untagged_days": 10}).status_code == 200
    # The index first, then what only it listed (in digest order: the platforms' digests are random here).
    expected = [sha256(index), *sorted(p.digest for p in platforms)]
    plan = client.post(f"{base}/runs", json={"dry_run": True}).json()
    assert plan["manifests"] == expected
    done = client.post(f"{base}/runs", json={}).json()
    assert (done["manifests"], done["manifests_deleted"]) == (expected, 3)
    for digest in expected:
        assert client.get(f"/v2/{repo}/manifests/{digest}").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/latest").status_code == 200
    again = client.post(f"{base}/runs", json={}).json()
    assert again["manifests_deleted"] == 0
