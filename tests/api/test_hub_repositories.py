"""The Hub API's repositories, tags and stars against a server with authentication on, checked field by field
against Docker Hub's documented shapes: visibility (anonymous callers see public repositories only; a stranger gets
404 for a private one), ordering and pagination, tag images of a single image and of a 2-platform index, pull
counts after manifest GETs (and their flush at shutdown), stars and deletes."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.checks import problem, wait_for
from tests.support.hub_api import (
    People,
    create_repository,
    get_json,
    names,
    pull,
    push_index,
    push_platform_image,
    repo_url,
    rfc3339,
    tags_url,
)
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, push_image, sha256
from tests.support.server import DockyardServer

LIST_FIELDS = {
    "name",
    "namespace",
    "repository_type",
    "status",
    "status_description",
    "description",
    "is_private",
    "star_count",
    "pull_count",
    "last_updated",
    "last_modified",
    "date_registered",
    "affiliation",
    "media_types",
    "content_types",
    "categories",
    "storage_size",
}
DETAIL_FIELDS = LIST_FIELDS | {
    "user",
    "is_automated",
    "collaborator_count",
    "hub_user",
    "has_starred",
    "full_description",
    "permissions",
    "immutable_tags_settings",
    "source",
}
TAG_FIELDS = {
    "id",
    "name",
    "creator",
    "last_updated",
    "last_updater",
    "last_updater_username",
    "repository",
    "full_size",
    "v2",
    "status",
    "tag_status",
    "tag_last_pulled",
    "tag_last_pushed",
    "media_type",
    "content_type",
    "digest",
    "images",
    "signatures",  # Dockyard's: [{key_id, verified, signed_at, format}] (docs/signing.md)
}
IMAGE_FIELDS = {
    "architecture",
    "features",
    "variant",
    "digest",
    "layers",
    "os",
    "os_features",
    "os_version",
    "size",
    "status",
    "last_pulled",
    "last_pushed",
}


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    return {"DOCKYARD_PULL_STATS_FLUSH_SECONDS": "0.2"}


# -- repositories ------------------------------------------------------------------------------------------------


def test_list_entry_and_detail_have_every_documented_field(people: People) -> None:
    alice = people.user("alice")
    image = push_image(alice.registry, f"{alice.name}/app", "v1")

    listing = get_json(alice.api, repo_url(alice.name))
    assert listing["count"] == 1
    assert listing["next"] is None
    assert listing["previous"] is None
    [entry] = listing["results"]
    assert set(entry) == LIST_FIELDS
    assert entry["name"] == "app"
    assert entry["namespace"] == alice.name
    assert entry["repository_type"] == "image"
    assert entry["status"] == 1
    assert entry["status_description"] == "active"
    assert entry["description"] == ""
    assert entry["is_private"] is True  # a push creates a private repository by default
    assert entry["star_count"] == 0
    assert entry["pull_count"] == 0
    registered = rfc3339(entry["date_registered"])
    assert rfc3339(entry["last_updated"]) >= registered
    assert rfc3339(entry["last_modified"]) >= rfc3339(entry["last_updated"])
    assert entry["affiliation"] == "owner"
    assert entry["media_types"] == [OCI_MANIFEST]
    assert entry["content_types"] == ["image"]
    assert entry["categories"] == []
    assert entry["storage_size"] == len(image.config) + sum(len(layer) for layer in image.layers)

    detail = get_json(alice.api, repo_url(alice.name, "app"))
    assert set(detail) == DETAIL_FIELDS
    assert {key: detail[key] for key in LIST_FIELDS} == entry
    assert detail["user"] == detail["hub_user"] == alice.name
    assert detail["is_automated"] is False
    assert detail["collaborator_count"] == 0
    assert detail["has_starred"] is False
    assert detail["full_description"] == ""
    assert detail["permissions"] == {"read": True, "write": True, "admin": True}
    assert detail["immutable_tags_settings"] == {"enabled": False, "rules": []}
    assert detail["source"] is None

    # The legacy paths answer the same shapes.
    assert get_json(alice.api, repo_url(alice.name, legacy=True)) == listing
    assert get_json(alice.api, repo_url(alice.name, "app", legacy=True)) == detail
    # The administrator sees it too, with every permission and no affiliation.
    admin = get_json(people.admin().api, repo_url(alice.name, "app"))
    assert admin["permissions"] == {"read": True, "write": True, "admin": True}
    assert admin["affiliation"] == ""


def test_create_patch_and_visibility(people: People) -> None:
    alice, bob = people.user("alice"), people.user("bob")
    anon = people.anonymous
    created = create_repository(
        alice, "docs", description="short", full_description="# Title\n\nlong text", is_private=False
    )
    assert set(created) == DETAIL_FIELDS
    assert (created["name"], created["namespace"], created["is_private"]) == ("docs", alice.name, False)
    assert (created["description"], created["full_description"]) == ("short", "# Title\n\nlong text")
    assert created["media_types"] == created["content_types"] == []
    assert created["storage_size"] == 0
    assert rfc3339(created["last_updated"]) == rfc3339(created["date_registered"])

    # Public: everyone sees it, with the permissions each holds.
    seen = get_json(anon, repo_url(alice.name, "docs"))
    assert seen["permissions"] == {"read": True, "write": False, "admin": False}
    assert seen["affiliation"] == ""
    assert seen["has_starred"] is False
    assert get_json(bob.api, repo_url(alice.name, "docs"))["permissions"]["admin"] is False
    assert names(get_json(anon, repo_url(alice.name))) == ["docs"]
    # Others may not change it: visible, so 403 (anonymous: 401).
    assert problem(bob.api.patch(repo_url(alice.name, "docs"), json={"description": "x"}), 403)["subject"] == (
        "repository"
    )
    problem(anon.patch(repo_url(alice.name, "docs"), json={"description": "x"}), 401)

    before = rfc3339(created["last_modified"])
    patched = alice.api.patch(repo_url(alice.name, "docs"), json={"description": "changed"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert set(body) == DETAIL_FIELDS
    assert body["description"] == "changed"
    assert body["full_description"] == "# Title\n\nlong text"  # omitted fields stay
    assert body["is_private"] is False
    assert rfc3339(body["last_modified"]) >= before

    # Private (through the legacy path too): anonymous callers and strangers get 404, as for nothing at all.
    assert alice.api.patch(repo_url(alice.name, "docs", legacy=True), json={"is_private": True}).json()["is_private"]
    missing = problem(anon.get(repo_url(alice.name, "nothing-here")), 404)
    hidden = problem(anon.get(repo_url(alice.name, "docs")), 404)
    assert hidden["title"] == missing["title"]
    assert hidden["subject"] == missing["subject"] == "repository"
    problem(bob.api.get(repo_url(alice.name, "docs")), 404)
    problem(bob.api.patch(repo_url(alice.name, "docs"), json={"description": "x"}), 404)
    assert anon.head(repo_url(alice.name, "docs")).status_code == 404
    assert get_json(anon, repo_url(alice.name))["count"] == 0
    assert get_json(bob.api, repo_url(alice.name))["results"] == []
    assert get_json(alice.api, repo_url(alice.name))["count"] == 1

    # The administrator's tool (tests/support/hub.py) flips visibility through the same route.
    people.hub.set_visibility(f"{alice.name}/docs", private=False)
    assert get_json(anon, repo_url(alice.name, "docs"))["is_private"] is False


def test_create_refusals(people: People) -> None:
    alice, bob = people.user("alice"), people.user("bob")
    create_repository(alice, "taken")
    assert problem(alice.api.post(repo_url(alice.name), json={"name": "taken"}), 409)["subject"] == "repository"
    problem(bob.api.post(repo_url(alice.name), json={"name": "intrusion"}), 403)
    problem(people.anonymous.post(repo_url(alice.name), json={"name": "anon"}), 401)
    problem(alice.api.post(repo_url("no-such-namespace-xyz"), json={"name": "lost"}), 404)
    problem(alice.api.post(repo_url(alice.name), json={"name": "elsewhere", "namespace": bob.name}), 400)
    for bad in ({"name": "A"}, {"name": "Upper"}, {"name": "a/b"}, {"name": "ok", "description": "d" * 101}):
        problem(alice.api.post(repo_url(alice.name), json=bad), 422)
    problem(alice.api.post(repo_url(alice.name), json={"name": "ok", "full_description": "f" * 25_001}), 422)
    problem(alice.api.patch(repo_url(alice.name, "taken"), json={"description": "d" * 101}), 422)
    assert problem(alice.api.get(repo_url("no-such-namespace-xyz")), 404)["subject"] == "account"


def test_head_answers_with_headers_only(people: People) -> None:
    alice = people.user("alice")
    create_repository(alice, "here")
    found = alice.api.head(repo_url(alice.name, "here"))
    assert found.status_code == 200
    assert found.content == b""
    gone = alice.api.head(repo_url(alice.name, "not-here"))
    assert gone.status_code == 404
    assert gone.content == b""


def test_ordering_filtering_and_pagination(people: People) -> None:
    alice = people.user("alice")
    made = ["delta", "alpha", "echo", "charlie", "bravo"]  # created in this order
    for name in made:
        create_repository(alice, name)
    first = get_json(alice.api, repo_url(alice.name), page_size=2)
    assert first["count"] == 5
    assert first["previous"] is None
    assert names(first) == ["alpha", "bravo"]
    assert first["next"] is not None
    assert first["next"].startswith("http")
    collected = names(first)
    url: str | None = first["next"]
    pages = 1
    while url is not None:
        query = parse_qs(urlsplit(url).query)
        assert query["page_size"] == ["2"]
        assert query["page"] == [str(pages + 1)]
        page = get_json(alice.api, url)
        assert page["count"] == 5
        assert page["previous"] is not None
        assert parse_qs(urlsplit(page["previous"]).query)["page"] == [str(pages)]
        collected += names(page)
        url = page["next"]
        pages += 1
    assert pages == 3
    assert collected == sorted(made)
    assert names(get_json(alice.api, repo_url(alice.name), page=3, page_size=2)) == ["echo"]
    assert get_json(alice.api, repo_url(alice.name), page=4, page_size=2)["results"] == []

    assert names(get_json(alice.api, repo_url(alice.name), ordering="-name")) == sorted(made, reverse=True)
    assert names(get_json(alice.api, repo_url(alice.name), ordering="last_updated")) == made
    assert names(get_json(alice.api, repo_url(alice.name), ordering="-last_updated")) == made[::-1]
    # A push makes a repository the most recently updated.
    push_image(alice.registry, f"{alice.name}/alpha", "v1")
    assert names(get_json(alice.api, repo_url(alice.name), ordering="-last_updated"))[0] == "alpha"

    filtered = get_json(alice.api, repo_url(alice.name), name="HAR")
    assert names(filtered) == ["charlie"]
    assert filtered["count"] == 1
    assert get_json(alice.api, repo_url(alice.name), name="zzz")["count"] == 0

    problem(alice.api.get(repo_url(alice.name), params={"ordering": "size"}), 422)
    problem(alice.api.get(repo_url(alice.name), params={"page_size": 101}), 422)
    problem(alice.api.get(repo_url(alice.name), params={"page": 0}), 422)


def test_pull_count_and_pull_times_follow_manifest_gets(people: People) -> None:
    alice = people.user("alice")
    repo = f"{alice.name}/pulled"
    image = push_platform_image(alice.registry, repo, "v1")
    push_platform_image(alice.registry, repo, "v2")
    for _ in range(3):
        pull(alice.registry, repo, "v1")
    pull(alice.registry, repo, image.digest)  # by digest: counts for the repository, touches no tag
    pull(alice.registry, repo, "v2", method="HEAD")  # HEAD is not a pull

    def counted() -> dict[str, Any] | None:
        body = get_json(alice.api, repo_url(alice.name, "pulled"))
        return body if body["pull_count"] >= 4 else None

    detail = wait_for(counted)
    assert detail["pull_count"] == 4
    assert names(get_json(alice.api, repo_url(alice.name)))  # still listed
    v1 = get_json(alice.api, tags_url(alice.name, "pulled", "v1"))
    v2 = get_json(alice.api, tags_url(alice.name, "pulled", "v2"))
    pulled = rfc3339(v1["tag_last_pulled"])
    assert pulled >= rfc3339(v1["tag_last_pushed"])
    assert [rfc3339(i["last_pulled"]) for i in v1["images"]] == [pulled]
    assert v2["tag_last_pulled"] is None
    assert v2["images"][0]["last_pulled"] is None

    # pull_count ordering puts the pulled repository first.
    create_repository(alice, "unpulled")
    assert names(get_json(alice.api, repo_url(alice.name), ordering="-pull_count")) == ["pulled", "unpulled"]
    assert names(get_json(alice.api, repo_url(alice.name), ordering="pull_count")) == ["unpulled", "pulled"]


def test_pulls_counted_since_the_last_flush_are_written_at_shutdown(tmp_path: Path) -> None:
    srv = DockyardServer(tmp_path / "data", secure=True, env={"DOCKYARD_PULL_STATS_FLUSH_SECONDS": "3600"})
    srv.start()
    try:
        people = People.open(srv)
        try:
            alice = people.user("alice")
            push_image(alice.registry, f"{alice.name}/app", "v1")
            for _ in range(2):
                pull(alice.registry, f"{alice.name}/app", "v1")
            assert get_json(alice.api, repo_url(alice.name, "app"))["pull_count"] == 0  # not flushed yet
        finally:
            people.close()
        srv.stop()  # a graceful stop flushes
        srv.start()
        people = People.open(srv)
        try:
            admin = people.admin()
            assert get_json(admin.api, repo_url(alice.name, "app"))["pull_count"] == 2
            assert get_json(admin.api, tags_url(alice.name, "app", "v1"))["tag_last_pulled"] is not None
        finally:
            people.close()
    finally:
        srv.stop()


# -- tags --------------------------------------------------------------------------------------------------------


def test_tag_of_a_single_image(people: People) -> None:
    alice = people.user("alice")
    repo = f"{alice.name}/single"
    history: list[dict[str, Any]] = [
        {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
        {"created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
        {"created_by": "RUN /bin/sh -c make install # buildkit"},
    ]
    image = push_platform_image(
        alice.registry, repo, "v1", architecture="arm64", variant="v8", history=history, layers=2
    )

    tag = get_json(alice.api, tags_url(alice.name, "single", "v1"))
    assert set(tag) == TAG_FIELDS
    assert tag["signatures"] == []  # nothing signed it
    assert tag["name"] == "v1"
    assert isinstance(tag["id"], int)
    assert isinstance(tag["repository"], int)
    assert isinstance(tag["creator"], int)
    assert tag["creator"] == tag["last_updater"]
    assert tag["last_updater_username"] == alice.name
    assert tag["v2"] is True
    assert tag["status"] == tag["tag_status"] == "active"
    assert tag["tag_last_pulled"] is None
    assert rfc3339(tag["tag_last_pushed"]) == rfc3339(tag["last_updated"])
    assert tag["media_type"] == OCI_MANIFEST
    assert tag["content_type"] == "image"
    assert tag["digest"] == image.digest
    assert tag["full_size"] == image.size
    [img] = tag["images"]
    assert set(img) == IMAGE_FIELDS
    assert (img["architecture"], img["os"], img["variant"]) == ("arm64", "linux", "v8")
    assert img["digest"] == image.digest
    assert img["size"] == image.size
    assert (img["features"], img["os_features"], img["os_version"]) == ("", "", None)
    assert img["status"] == "active"
    assert img["last_pulled"] is None
    rfc3339(img["last_pushed"])
    assert img["layers"] == [
        {"digest": sha256(image.layers[0]), "size": len(image.layers[0]), "instruction": "ADD file:abc in /"},
        {"digest": None, "size": 0, "instruction": 'CMD ["sh"]'},
        {"digest": sha256(image.layers[1]), "size": len(image.layers[1]), "instruction": "RUN /bin/sh -c make install"},
    ]

    listing = get_json(alice.api, tags_url(alice.name, "single"))
    assert listing["count"] == 1
    assert listing["next"] is None
    assert listing["previous"] is None
    assert listing["results"] == [tag]
    assert get_json(alice.api, f"{repo_url(alice.name, 'single', legacy=True)}/tags") == listing
    assert get_json(alice.api, f"{repo_url(alice.name, 'single', legacy=True)}/tags/v1") == tag
    head = alice.api.head(tags_url(alice.name, "single", "v1"))
    assert head.status_code == 200
    assert head.content == b""
    assert alice.api.head(tags_url(alice.name, "single", "v9")).status_code == 404
    assert problem(alice.api.get(tags_url(alice.name, "single", "v9")), 404)["subject"] == "tag"
    # Tags of a private repository are as hidden as the repository.
    problem(people.anonymous.get(tags_url(alice.name, "single")), 404)
    problem(people.user("bob").api.get(tags_url(alice.name, "single", "v1")), 404)


def test_tag_of_a_two_platform_index(people: People) -> None:
    alice = people.user("alice")
    repo = f"{alice.name}/multi"
    amd = push_platform_image(alice.registry, repo, None, architecture="amd64", layers=2)
    arm = push_platform_image(alice.registry, repo, None, architecture="arm", variant="v7")
    platforms = [{"architecture": "amd64", "os": "linux"}, {"architecture": "arm", "os": "linux", "variant": "v7"}]
    digest = push_index(alice.registry, repo, "latest", [(amd, platforms[0]), (arm, platforms[1])])

    tag = get_json(alice.api, tags_url(alice.name, "multi", "latest"))
    assert set(tag) == TAG_FIELDS
    assert tag["signatures"] == []  # nothing signed it
    assert tag["media_type"] == OCI_INDEX
    assert tag["content_type"] == "image"
    assert tag["digest"] == digest
    assert tag["full_size"] == amd.size  # linux/amd64's, as Docker Hub shows
    images = tag["images"]
    assert [set(image) for image in images] == [IMAGE_FIELDS, IMAGE_FIELDS]
    by_arch = {image["architecture"]: image for image in images}
    assert set(by_arch) == {"amd64", "arm"}
    assert (by_arch["amd64"]["digest"], by_arch["amd64"]["size"], by_arch["amd64"]["variant"]) == (
        amd.digest,
        amd.size,
        None,
    )
    assert (by_arch["arm"]["digest"], by_arch["arm"]["size"], by_arch["arm"]["variant"]) == (arm.digest, arm.size, "v7")
    assert [len(by_arch["amd64"]["layers"]), len(by_arch["arm"]["layers"])] == [2, 1]
    assert by_arch["arm"]["layers"][0]["size"] == len(arm.layers[0])
    for image in images:
        assert image["os"] == "linux"
        assert image["status"] == "active"
        assert image["last_pulled"] is None
        rfc3339(image["last_pushed"])

    detail = get_json(alice.api, repo_url(alice.name, "multi"))
    assert detail["media_types"] == sorted([OCI_INDEX, OCI_MANIFEST])
    assert detail["content_types"] == ["image"]


def test_tag_list_ordering_filter_and_pages(people: People) -> None:
    alice = people.user("alice")
    repo = f"{alice.name}/many"
    pushed = ["b-1", "a-2", "c-3", "a-4"]
    for tag in pushed:
        push_image(alice.registry, repo, tag)
    newest_first = [t["name"] for t in get_json(alice.api, tags_url(alice.name, "many"))["results"]]
    assert newest_first == pushed[::-1]
    assert [t["name"] for t in get_json(alice.api, tags_url(alice.name, "many"), ordering="name")["results"]] == sorted(
        pushed
    )
    assert [
        t["name"] for t in get_json(alice.api, tags_url(alice.name, "many"), ordering="last_updated")["results"]
    ] == (pushed)
    page = get_json(alice.api, tags_url(alice.name, "many"), page_size=3, ordering="name")
    assert page["count"] == 4
    assert len(page["results"]) == 3
    assert page["previous"] is None
    rest = get_json(alice.api, page["next"])
    assert [t["name"] for t in rest["results"]] == ["c-3"]
    assert rest["next"] is None
    assert rest["previous"]
    filtered = get_json(alice.api, tags_url(alice.name, "many"), name="A-", ordering="name")
    assert [t["name"] for t in filtered["results"]] == ["a-2", "a-4"]
    assert filtered["count"] == 2
    problem(alice.api.get(tags_url(alice.name, "many"), params={"ordering": "size"}), 422)


# -- stars -------------------------------------------------------------------------------------------------------


def test_stars(people: People) -> None:
    alice, bob, carol = people.user("alice"), people.user("bob"), people.user("carol")
    create_repository(alice, "shiny", is_private=False)
    create_repository(alice, "secret", is_private=True)
    stars = f"/api/v2/repositories/{alice.name}/shiny/stars"

    for _ in range(2):  # starring twice is no error and counts once
        response = bob.api.post(stars)
        assert response.status_code == 204
        assert response.content == b""
    assert carol.api.post(stars).status_code == 204
    detail = get_json(bob.api, repo_url(alice.name, "shiny"))
    assert detail["star_count"] == 2
    assert detail["has_starred"] is True
    assert get_json(alice.api, repo_url(alice.name, "shiny"))["has_starred"] is False
    assert get_json(alice.api, repo_url(alice.name), name="shiny")["results"][0]["star_count"] == 2

    starred = get_json(people.anonymous, f"/api/v2/users/{bob.name}/starred")
    assert starred["count"] == 1
    assert starred["next"] is None
    assert starred["previous"] is None
    [entry] = starred["results"]
    assert set(entry) == LIST_FIELDS
    assert (entry["namespace"], entry["name"], entry["star_count"]) == (alice.name, "shiny", 2)

    problem(people.anonymous.post(stars), 401)
    problem(bob.api.post(f"/api/v2/repositories/{alice.name}/secret/stars"), 404)  # not visible to bob
    problem(bob.api.post(f"/api/v2/repositories/{alice.name}/none/stars"), 404)
    problem(people.anonymous.get("/api/v2/users/no-such-user-xyz/starred"), 404)

    # A starred repository that turns private leaves the lists of those who may no longer see it.
    alice.api.patch(repo_url(alice.name, "shiny"), json={"is_private": True})
    assert get_json(people.anonymous, f"/api/v2/users/{bob.name}/starred")["count"] == 0
    assert get_json(alice.api, f"/api/v2/users/{bob.name}/starred")["count"] == 1
    alice.api.patch(repo_url(alice.name, "shiny"), json={"is_private": False})

    for _ in range(2):
        assert bob.api.delete(stars).status_code == 204
    detail = get_json(bob.api, repo_url(alice.name, "shiny"))
    assert detail["star_count"] == 1
    assert detail["has_starred"] is False
    assert get_json(bob.api, f"/api/v2/users/{bob.name}/starred")["results"] == []


# -- deletes -----------------------------------------------------------------------------------------------------


def test_delete_tag_then_repository(people: People) -> None:
    alice, bob = people.user("alice"), people.user("bob")
    repo = f"{alice.name}/doomed"
    image = push_image(alice.registry, repo, "v1")
    push_image(alice.registry, repo, "v2")
    alice.api.patch(repo_url(alice.name, "doomed"), json={"is_private": False})

    problem(people.anonymous.delete(tags_url(alice.name, "doomed", "v1")), 401)
    problem(bob.api.delete(tags_url(alice.name, "doomed", "v1")), 403)
    untagged = alice.api.delete(tags_url(alice.name, "doomed", "v1"))
    assert untagged.status_code == 204
    assert untagged.content == b""
    problem(alice.api.get(tags_url(alice.name, "doomed", "v1")), 404)
    problem(alice.api.delete(tags_url(alice.name, "doomed", "v1")), 404)
    assert [t["name"] for t in get_json(alice.api, tags_url(alice.name, "doomed"))["results"]] == ["v2"]
    # Untagging leaves the manifest, as a registry tag delete does.
    pull(alice.registry, repo, image.digest)
    # The legacy path deletes tags too.
    assert alice.api.delete(f"{repo_url(alice.name, 'doomed', legacy=True)}/tags/v2").status_code == 204

    problem(people.anonymous.delete(repo_url(alice.name, "doomed")), 401)
    problem(bob.api.delete(repo_url(alice.name, "doomed")), 403)
    deleted = alice.api.delete(repo_url(alice.name, "doomed"))
    assert deleted.status_code == 202
    assert deleted.content == b""
    problem(alice.api.get(repo_url(alice.name, "doomed")), 404)
    problem(alice.api.delete(repo_url(alice.name, "doomed")), 404)
    assert get_json(alice.api, repo_url(alice.name))["count"] == 0
    gone = alice.registry.get(f"/v2/{repo}/manifests/{image.digest}")
    assert gone.status_code == 404
    # The name is free again.
    create_repository(alice, "doomed")
    assert alice.api.delete(repo_url(alice.name, "doomed", legacy=True)).status_code == 202
