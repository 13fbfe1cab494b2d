"""The audit log through the Hub API (``GET /api/v2/auditlogs/{account}`` and ``…/actions``) against a server
with authentication on: Docker Hub's ``logs`` entries field by field, newest first, the filters (action, target,
actor, time window), pages, and access for the namespace's owners only (others 403: a namespace is public; an unknown
namespace 404; an anonymous caller 401)."""

from __future__ import annotations

from datetime import timedelta

from dockyard.events.audit import ACTION_DESCRIPTIONS
from tests.support.checks import problem
from tests.support.hub_api import People, create_repository, get_json, repo_url, rfc3339
from tests.support.oci import push_image

AUDIT_FIELDS = {"account", "action", "name", "actor", "data", "timestamp", "action_description", "source_ip"}


def test_audit_log_is_for_the_namespace_owners(people: People) -> None:
    alice, bob = people.user("alice"), people.user("bob")
    create_repository(alice, "audited", description="one")
    alice.api.patch(repo_url(alice.name, "audited"), json={"description": "two"})
    alice.api.patch(repo_url(alice.name, "audited"), json={"is_private": False})
    push_image(alice.registry, f"{alice.name}/audited", "v1")
    url = f"/api/v2/auditlogs/{alice.name}"

    log = get_json(alice.api, url)
    assert set(log) == {"count", "next", "previous", "logs"}
    entries = log["logs"]
    assert log["count"] == len(entries) >= 4
    for entry in entries:
        assert set(entry) == AUDIT_FIELDS
        assert entry["account"] == alice.name
        assert entry["action_description"] == ACTION_DESCRIPTIONS[entry["action"]]
        assert isinstance(entry["data"], dict)
        rfc3339(entry["timestamp"])
    times = [rfc3339(entry["timestamp"]) for entry in entries]
    assert times == sorted(times, reverse=True)  # newest first
    repo_actions = [e["action"] for e in entries if e["name"].startswith(f"{alice.name}/audited")]
    assert repo_actions == ["repo.tag.push", "repo.change_privacy", "repo.update", "repo.create"]
    push = entries[0]
    assert (push["name"], push["actor"], push["source_ip"]) == (f"{alice.name}/audited:v1", alice.name, "127.0.0.1")
    assert entries[1]["data"] == {"is_private": "false"}  # Docker Hub's data is a map of strings

    # Filters: action, target (a repository: its tags too), actor, time window.
    only = get_json(alice.api, url, action="repo.update")["logs"]
    assert [e["action"] for e in only] == ["repo.update"]
    assert len(get_json(alice.api, url, name=f"{alice.name}/audited")["logs"]) == 4
    assert get_json(alice.api, url, actor=bob.name)["count"] == 0
    newest = times[0]
    assert get_json(alice.api, url, **{"from": (newest + timedelta(seconds=1)).isoformat()})["count"] == 0
    assert get_json(alice.api, url, to=(times[-1] - timedelta(seconds=1)).isoformat())["count"] == 0
    window = get_json(alice.api, url, **{"from": times[1].isoformat(), "to": newest.isoformat()})
    assert [e["timestamp"] for e in window["logs"]] == [
        e["timestamp"] for e in entries[1:] if rfc3339(e["timestamp"]) >= times[1]
    ]
    # Pages.
    first = get_json(alice.api, url, page_size=2)
    assert first["count"] == log["count"]
    assert len(first["logs"]) == 2
    assert first["previous"] is None
    second = get_json(alice.api, first["next"])
    assert second["logs"] == entries[2:4]
    assert second["previous"] is not None

    # Only owners (and the administrator) read it; others are refused (the namespace itself is public).
    problem(people.anonymous.get(url), 401)
    problem(bob.api.get(url), 403)
    problem(bob.api.get(f"{url}/actions"), 403)
    assert get_json(people.admin().api, url)["count"] == log["count"]
    problem(alice.api.get("/api/v2/auditlogs/no-such-namespace-xyz"), 404)
    problem(alice.api.get(url, params={"from": "not a time"}), 422)


def test_audit_log_of_an_organization(people: People) -> None:
    owner, member = people.user("owner"), people.user("member")
    org = people.hub.org(owner.name)
    added = owner.api.post(f"/api/v2/orgs/{org}/members", json={"member": member.name, "role": "member"})
    assert added.status_code == 201, added.text
    response = owner.api.post(repo_url(org), json={"name": "service", "namespace": org})
    assert response.status_code == 201, response.text
    entries = get_json(owner.api, f"/api/v2/auditlogs/{org}")["logs"]
    assert "repo.create" in [e["action"] for e in entries]
    # A member sees the organization but may not read its audit log.
    problem(member.api.get(f"/api/v2/auditlogs/{org}"), 403)
    problem(member.api.get(f"/api/v2/auditlogs/{org}/actions"), 403)


def test_audit_actions_list_every_action(people: People) -> None:
    alice = people.user("alice")
    body = get_json(alice.api, f"/api/v2/auditlogs/{alice.name}/actions")
    assert set(body) == {"actions"}
    listed = {}
    for group in body["actions"].values():
        assert set(group) == {"actions", "label"}
        assert group["label"]
        for action in group["actions"]:
            assert set(action) == {"name", "description", "label"}
            listed[action["name"]] = action["description"]
    assert listed == ACTION_DESCRIPTIONS
    assert {"repo.tag.push", "repo.create"} <= {a["name"] for a in body["actions"]["repo"]["actions"]}
    problem(people.anonymous.get(f"/api/v2/auditlogs/{alice.name}/actions"), 401)
