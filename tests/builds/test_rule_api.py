"""A build rule replaced through the Hub API (``PUT …/build-rules/{rule}``): its id stays, every setting is the new
one, the stored build args — secret values included — stay when the body has none and are replaced when it has
some; an invalid template or an unknown rule is refused; the change is audited. No git server is needed: the link
points at a port nothing listens on and nothing is built. Who may: ``tests/security/rows_builds.py``."""

from __future__ import annotations

from tests.support.hub_api import People, create_repository


def test_a_rule_is_replaced_in_place(people: People) -> None:
    owner = people.user("rules")
    create_repository(owner, "app")
    base = f"/api/v2/repositories/{owner.name}/app"
    assert owner.api.post(f"{base}/build-link", json={"url": "git://127.0.0.1:9/app.git"}).status_code == 201
    made = owner.api.post(
        f"{base}/build-rules",
        json={"source_name": "main", "tag": "latest", "build_args": [{"name": "TOKEN", "value": "s3", "secret": True}]},
    )
    assert made.status_code == 201, made.text
    rule = made.json()["id"]

    replaced = owner.api.put(
        f"{base}/build-rules/{rule}",
        json={
            "source_type": "Tag",
            "source_name": "/^v([0-9]+)$/",
            "tag": "{\\1}",
            "dockerfile": "docker/Dockerfile",
            "build_context": "/src",
            "autobuild": False,
            "build_cache": False,
            "also_latest": True,
            "network": True,
        },
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["id"] == rule
    assert (body["source_type"], body["source_name"], body["tag"], body["dockerfile"], body["build_context"]) == (
        "Tag",
        "/^v([0-9]+)$/",
        "{\\1}",
        "docker/Dockerfile",
        "/src",
    )
    assert (body["autobuild"], body["build_cache"], body["also_latest"], body["network"]) == (False, False, True, True)
    assert body["build_args"] == [{"name": "TOKEN", "value": None, "secret": True}]  # kept, still secret

    args = owner.api.put(
        f"{base}/build-rules/{rule}",
        json={"source_name": "main", "tag": "latest", "build_args": [{"name": "V", "value": "1"}]},
    )
    assert args.json()["build_args"] == [{"name": "V", "value": "1", "secret": False}]
    listed = owner.api.get(f"{base}/build-rules").json()
    assert [(r["id"], r["source_name"]) for r in listed] == [(rule, "main")]

    bad = owner.api.put(f"{base}/build-rules/{rule}", json={"source_name": "main", "tag": "{\\1}"})
    assert bad.status_code == 400, bad.text
    unknown = owner.api.put(f"{base}/build-rules/no-such-rule", json={"source_name": "main", "tag": "latest"})
    assert unknown.status_code == 404, unknown.text
    audit = owner.api.get(f"/api/v2/auditlogs/{owner.name}", params={"action": "build.rule.update"})
    assert len(audit.json()["logs"]) == 2
