"""Tag immutability through the Hub API and ``/v2`` (issue 18, item 3): Docker Hub's ``immutable_tags_settings`` on
the repository PATCH and GET, its ``…/immutabletags`` and ``…/immutabletags/verify``, a namespace's glob rules, and
what they refuse — moving or deleting a protected tag (403 ``DENIED`` naming the rule) — and allow (pushing the
digest it names again, other tags)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.checks import problem
from tests.support.hub_api import People, create_repository, get_json, push_platform_image, repo_url, tags_url
from tests.support.oci import error_codes


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _denied(response: Any) -> str:
    """The message of a 403 ``DENIED``."""
    assert response.status_code == 403, response.text
    assert error_codes(response) == ["DENIED"]
    message: str = response.json()["errors"][0]["message"]
    return message


def test_hub_shaped_patch_round_trips_and_unknown_fields_are_refused(people: People) -> None:
    alice = people.user()
    name = unique_name("imm")
    create_repository(alice, name)
    url = repo_url(alice.name, name)
    assert get_json(alice.api, url)["immutable_tags_settings"] == {"enabled": False, "rules": []}

    settings = {"enabled": True, "rules": ["v.*", ".*-RELEASE"]}
    response = alice.api.patch(url, json={"immutable_tags_settings": settings})
    assert response.status_code == 200, response.text
    assert response.json()["immutable_tags_settings"] == settings
    assert get_json(alice.api, url)["immutable_tags_settings"] == settings
    # The legacy path and the newer revision's endpoint write the same settings.
    response = alice.api.patch(
        f"{url}/immutabletags", json={"immutable_tags": False, "immutable_tags_rules": ["v.*", ".*-RELEASE"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["immutable_tags_settings"] == {"enabled": False, "rules": ["v.*", ".*-RELEASE"]}
    assert get_json(alice.api, repo_url(alice.name, name, legacy=True))["immutable_tags_settings"]["enabled"] is False

    # Unknown fields are refused, never ignored; so is a rule RE2 cannot compile.
    problem(alice.api.patch(url, json={"immutable_tags": True}), 422)
    problem(alice.api.patch(url, json={"description": "x", "colour": "blue"}), 422)
    problem(alice.api.patch(url, json={"immutable_tags_settings": {"enabled": True}}), 422)
    problem(alice.api.patch(url, json={"immutable_tags_settings": {"enabled": True, "rules": ["v(.*"]}}), 400)
    problem(alice.api.patch(f"{url}/immutabletags", json={"immutable_tags": True}), 422)
    assert get_json(alice.api, url)["immutable_tags_settings"] == {"enabled": False, "rules": ["v.*", ".*-RELEASE"]}

    # Only an admin of the repository changes them.
    bob = people.user()
    problem(bob.api.patch(f"{url}/immutabletags", json={"immutable_tags": True, "immutable_tags_rules": []}), 404)
    problem(people.anonymous.patch(url, json={"immutable_tags_settings": settings}), 401)


def test_verify_lists_the_tags_a_rule_would_protect(people: People) -> None:
    alice = people.user()
    repo = f"{alice.name}/{unique_name('verify')}"
    for tag in ("v1.0", "v2.1", "dev", "latest"):
        push_platform_image(alice.registry, repo, tag)
    url = f"{repo_url(*repo.split('/'))}/immutabletags/verify"
    response = alice.api.post(url, json={"regex": "v.*"})
    assert response.status_code == 200, response.text
    assert response.json() == {"tags": ["v1.0", "v2.1"]}  # a whole-tag match: "dev" is not protected by v.*
    assert alice.api.post(url, json={"regex": ".*"}).json() == {"tags": ["dev", "latest", "v1.0", "v2.1"]}
    problem(alice.api.post(url, json={"regex": "a,b"}), 422)
    problem(alice.api.post(url, json={"regex": "(("}), 400)


def test_protected_tags_cannot_move_or_go_through_v2_or_the_api(people: People) -> None:
    alice = people.user()
    name = unique_name("guarded")
    repo = f"{alice.name}/{name}"
    first = push_platform_image(alice.registry, repo, "v1")
    push_platform_image(alice.registry, repo, "dev")
    response = alice.api.patch(
        f"{repo_url(alice.name, name)}/immutabletags",
        json={"immutable_tags": True, "immutable_tags_rules": ["v[0-9]+"]},
    )
    assert response.status_code == 200, response.text

    # Moving v1 to another image is refused with a message naming the rule; nothing of the push is kept.
    other = push_platform_image(alice.registry, repo, None)
    response = alice.registry.put(
        f"/v2/{repo}/manifests/v1",
        content=other.manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    message = _denied(response)
    assert 'tag "v1"' in message
    assert '"v[0-9]+"' in message
    head = alice.registry.head(
        f"/v2/{repo}/manifests/v1", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    assert head.headers["docker-content-digest"] == first.digest
    # So is tagging by digest with ?tag=.
    response = alice.registry.put(
        f"/v2/{repo}/manifests/{other.digest}?tag=v1",
        content=other.manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 403, response.text

    # Pushing the identical manifest again succeeds; so do new protected tags and mutable tags.
    response = alice.registry.put(
        f"/v2/{repo}/manifests/v1",
        content=first.manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.text
    push_platform_image(alice.registry, repo, "v2")
    push_platform_image(alice.registry, repo, "dev")

    # Deleting: by tag, by digest (the manifest a protected tag names) and through the Hub API are refused.
    response = alice.registry.delete(f"/v2/{repo}/manifests/v1")
    _denied(response)
    response = alice.registry.delete(f"/v2/{repo}/manifests/{first.digest}")
    _denied(response)
    body = problem(alice.api.delete(tags_url(alice.name, name, "v1")), 403)
    assert "immutable" in body["detail"]
    assert alice.api.delete(tags_url(alice.name, name, "dev")).status_code == 204

    # Turned off, the same tag moves.
    alice.api.patch(
        f"{repo_url(alice.name, name)}/immutabletags",
        json={"immutable_tags": False, "immutable_tags_rules": ["v[0-9]+"]},
    )
    response = alice.registry.put(
        f"/v2/{repo}/manifests/v1",
        content=other.manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.text


def test_namespace_rules_guard_every_matching_repository(people: People) -> None:
    alice = people.user()
    url = f"/api/v2/namespaces/{alice.name}/immutability-rules"
    assert get_json(alice.api, url) == {"namespace": alice.name, "rules": []}
    rules = [{"pattern": "release-*", "syntax": "glob", "repositories": "prod-*"}]
    response = alice.api.put(url, json={"rules": rules})
    assert response.status_code == 200, response.text
    assert response.json() == {"namespace": alice.name, "rules": rules}
    problem(alice.api.put(url, json={"rules": [{"pattern": "((", "syntax": "regex"}]}), 400)
    problem(alice.api.put(url, json={"rules": [], "extra": 1}), 422)
    bob = people.user()
    problem(bob.api.get(url), 403)
    problem(bob.api.put(url, json={"rules": []}), 403)

    prod = f"{alice.name}/{unique_name('prod')}"
    test = f"{alice.name}/{unique_name('test')}"
    for repo in (prod, test):
        push_platform_image(alice.registry, repo, "release-1")
        image = push_platform_image(alice.registry, repo, None)
        response = alice.registry.put(
            f"/v2/{repo}/manifests/release-1",
            content=image.manifest,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert response.status_code == (403 if repo == prod else 201), response.text
    response = alice.registry.delete(f"/v2/{prod}/manifests/release-1")
    assert "namespace" in _denied(response)
    # A repository created after the rule is guarded from its first push on.
    later = f"{alice.name}/{unique_name('prod-later')}"
    push_platform_image(alice.registry, later, "release-2")
    assert alice.registry.delete(f"/v2/{later}/manifests/release-2").status_code == 403
