"""The build pipeline end to end: a real git server on loopback (``git daemon``), commits and tags pushed with the
git CLI, signed GitHub- and GitLab-style push payloads delivered to the trigger endpoint, and the test executor
(``tests/support/build_executor.py``: a real clone at the commit and a real push over HTTP with the build's
token) — images appear under exactly the tags the rules predict, logs are kept and streamed, and wrong
signatures, ``[skip build]``, floods, base-image pushes and cancellation do what they must."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import tarfile
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.build_executor import PIPELINE_ENV
from tests.support.checks import wait_for
from tests.support.gitserver import GitServer, WorkTree
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.hub_api import People, Person, create_repository
from tests.support.oci import OCI_MANIFEST, push_image
from tests.support.webhook_receiver import WebhookReceiver

FINISHED = ("succeeded", "failed", "cancelled")


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    """This module's servers run their builds on the test executor."""
    return {**SIGN_IN_OFTEN, **PIPELINE_ENV}


class Linked:
    """A repository of ``owner`` linked to a git repository on the loopback server."""

    def __init__(self, owner: Person, name: str, tree: WorkTree, created: dict[str, Any]) -> None:
        self.owner, self.name, self.tree, self.created = owner, name, tree, created
        self.base = f"/api/v2/repositories/{owner.name}/{name}"

    def rule(self, **body: Any) -> dict[str, Any]:
        response = self.owner.api.post(f"{self.base}/build-rules", json=body)
        assert response.status_code == 201, response.text
        rule: dict[str, Any] = response.json()
        return rule

    def github(
        self, client: httpx.Client, ref: str, commit: str, message: str, *, secret: str | None = None
    ) -> httpx.Response:
        body = json.dumps({"ref": ref, "after": commit, "head_commit": {"id": commit, "message": message}}).encode()
        signature = hmac.new((secret or self.created["webhook_secret"]).encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={signature}"}
        return client.post(f"{self.base}/build-link/webhook", content=body, headers=headers)

    def gitlab(self, client: httpx.Client, ref: str, commit: str, *, token: str | None = None) -> httpx.Response:
        kind = "Tag Push Hook" if ref.startswith("refs/tags/") else "Push Hook"
        body = json.dumps({"ref": ref, "checkout_sha": commit, "commits": [{"id": commit, "message": "m"}]}).encode()
        headers = {"X-Gitlab-Event": kind, "X-Gitlab-Token": token or self.created["webhook_secret"]}
        return client.post(f"{self.base}/build-link/webhook", content=body, headers=headers)

    def build(self, build_id: str) -> dict[str, Any]:
        response = self.owner.api.get(f"{self.base}/builds/{build_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def finished(self, build_id: str, timeout: float = 60) -> dict[str, Any]:
        return wait_for(
            lambda: (b := self.build(build_id))["state"] in FINISHED and b,
            timeout=timeout,
            interval=0.2,
            what=f"build {build_id} finished",
        )

    def builds(self) -> list[dict[str, Any]]:
        response = self.owner.api.get(f"{self.base}/builds", params={"page_size": 100})
        assert response.status_code == 200, response.text
        results: list[dict[str, Any]] = response.json()["results"]
        return results

    def tags(self) -> list[str]:
        response = self.owner.registry.get(f"/v2/{self.owner.name}/{self.name}/tags/list")
        assert response.status_code == 200, response.text
        return sorted(response.json()["tags"] or [])

    def files(self, tag: str) -> dict[str, bytes]:
        repo = f"/v2/{self.owner.name}/{self.name}"
        manifest = self.owner.registry.get(f"{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST}).json()
        layer = self.owner.registry.get(f"{repo}/blobs/{manifest['layers'][0]['digest']}").content
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def link(
    people: People,
    gitserver: GitServer,
    tmp_path: Path,
    name: str,
    files: dict[str, str],
    *,
    public: bool = False,
    **fields: Any,
) -> Linked:
    owner = people.user("builder")
    create_repository(owner, name, is_private=not public)
    tree = gitserver.create(f"{owner.name}-{name}", tmp_path / name)
    tree.commit(files, "initial")
    tree.push("main")
    response = owner.api.post(f"/api/v2/repositories/{owner.name}/{name}/build-link", json={"url": tree.url, **fields})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["auth"] == "none"
    assert created["webhook_secret"]
    assert "/trigger/" in created["trigger_url"]
    return Linked(owner, name, tree, created)


def test_pushes_build_exactly_the_tags_the_rules_predict(people: People, gitserver: GitServer, tmp_path: Path) -> None:
    repo = link(people, gitserver, tmp_path, "app", {"Dockerfile": "ECHO hello\n", "hello.txt": "v1\n"})
    repo.rule(source_type="Branch", source_name="main", tag="latest")
    repo.rule(source_type="Tag", source_name="/^v([0-9]+)\\.([0-9]+)$/", tag="{\\1}.{\\2}")
    repo.rule(source_type="Branch", source_name="/^release/(.*)$/", tag="rel-{\\1}", autobuild=False)
    anonymous = people.anonymous

    commit = repo.tree.commit({"hello.txt": "v2\n"}, "second")
    repo.tree.push("main")
    answer = repo.github(anonymous, "refs/heads/main", commit, "second")
    assert answer.status_code == 202, answer.text
    (first,) = answer.json()["builds"]
    done = repo.finished(first)
    assert done["state"] == "succeeded", done
    assert (done["commit"], done["tags"], done["trigger"]) == (commit, ["latest"], "webhook:github")
    assert done["duration_seconds"] is not None
    assert done["digest"].startswith("sha256:")
    assert repo.files("latest")["hello.txt"] == b"v2\n"

    repo.tree.tag("v1.2", annotated=True)
    repo.tree.push("v1.2")
    tagged = repo.gitlab(anonymous, "refs/tags/v1.2", commit)
    assert tagged.status_code == 202, tagged.text
    (second,) = tagged.json()["builds"]
    assert repo.finished(second)["tags"] == ["1.2"]
    # a tag no rule matches, and a branch whose rule does not build on push: nothing
    assert repo.gitlab(anonymous, "refs/tags/nightly", commit).json()["builds"] == []
    assert repo.github(anonymous, "refs/heads/release/9", commit, "r").json()["builds"] == []
    assert repo.tags() == ["1.2", "latest"]

    # a rule with autobuild off still builds when asked by hand, with its groups
    repo.tree.branch("release/9")
    repo.tree.push("release/9")
    by_hand = repo.owner.api.post(f"{repo.base}/builds", json={"source_name": "release/9"})
    assert by_hand.status_code == 202, by_hand.text
    (third,) = by_hand.json()["builds"]
    assert repo.finished(third)["tags"] == ["rel-9"]
    assert repo.tags() == ["1.2", "latest", "rel-9"]

    # the log is kept (archived to storage) and streamed
    log = wait_for(
        lambda: (
            (r := repo.owner.api.get(f"{repo.base}/builds/{first}/logs")).status_code == 200
            and "pushed" in r.text
            and r.text
        ),
        what="the log",
    )
    assert "STEP 1/1: ECHO hello" in log
    assert f"pushed {repo.owner.name}/app:latest" in log
    with repo.owner.api.stream("GET", f"{repo.base}/builds/{first}/logs", params={"follow": 1}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    assert "data: STEP 1/1: ECHO hello" in text
    assert text.endswith("event: end\ndata: succeeded\n\n")


def test_wrong_or_missing_signatures_queue_nothing(people: People, gitserver: GitServer, tmp_path: Path) -> None:
    repo = link(people, gitserver, tmp_path, "signed", {"Dockerfile": "ECHO x\n"})
    details = repo.owner.api.get(f"/api/v2/namespaces/{repo.owner.name}/repositories/signed").json()
    assert details["is_automated"] is True  # linked to a git repository
    repo.rule(source_type="Branch", source_name="main", tag="latest")
    commit = repo.tree.head()
    client = people.anonymous
    assert repo.github(client, "refs/heads/main", commit, "m", secret="wrong-secret").status_code == 401
    assert repo.gitlab(client, "refs/heads/main", commit, token="wrong-token").status_code == 401
    unsigned = client.post(
        f"{repo.base}/build-link/webhook",
        content=json.dumps({"ref": "refs/heads/main", "after": commit}).encode(),
        headers={"X-GitHub-Event": "push"},
    )
    assert unsigned.status_code == 401
    assert unsigned.headers["content-type"].startswith("application/problem+json")
    # an unknown repository answers the same (nothing tells a private repository from a missing one)
    missing = client.post(
        f"/api/v2/repositories/{repo.owner.name}/nothing-here/build-link/webhook",
        content=b"{}",
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"},
    )
    assert missing.status_code == 401
    assert client.post(f"{repo.base}/trigger/not-the-token/call/", json={"build": True}).status_code == 401
    assert repo.builds() == []
    # [skip build] / [ci skip] in the head commit: nothing built
    assert repo.github(client, "refs/heads/main", commit, "docs only [skip build]").json()["builds"] == []
    assert repo.github(client, "refs/heads/main", commit, "docs [ci skip]").json()["builds"] == []
    assert repo.builds() == []
    # the generic trigger URL with its token builds
    token_path = repo.created["trigger_url"].split("/api/v2/", 1)[1]
    called = client.post(f"/api/v2/{token_path}", json={"source_type": "Branch", "source_name": "main"})
    assert called.status_code == 202, called.text
    (build,) = called.json()["builds"]
    assert repo.finished(build)["trigger"] == "trigger"


def test_a_flood_is_coalesced_and_the_newest_commit_wins(people: People, gitserver: GitServer, tmp_path: Path) -> None:
    repo = link(people, gitserver, tmp_path, "flood", {"Dockerfile": "SLEEP 2\n"})
    repo.rule(source_type="Branch", source_name="main", tag="latest")
    client = people.anonymous
    commits = []
    ids = set()
    for number in range(6):
        commits.append(repo.tree.commit({"n.txt": str(number)}, f"commit {number}"))
        repo.tree.push("main")
        answer = repo.github(client, "refs/heads/main", commits[-1], f"commit {number}")
        assert answer.status_code == 202
        ids.update(answer.json()["builds"])
    assert len(ids) <= 2  # at most one running and one queued for (rule, ref)
    builds = repo.builds()
    assert len(builds) == len(ids)
    states = [b["state"] for b in builds]
    assert states.count("queued") <= 1
    assert sum(s in ("cloning", "building", "pushing") for s in states) <= 1
    newest = builds[0]["id"]
    assert repo.finished(newest, timeout=90)["commit"] == commits[-1]
    assert repo.files("latest")["n.txt"] == b"5"


def test_a_base_image_push_queues_the_dependent_build_once(
    people: People, gitserver: GitServer, tmp_path: Path
) -> None:
    repo = link(people, gitserver, tmp_path, "child", {"Dockerfile": "placeholder\n"})
    owner = repo.owner
    host = people.server.url.split("://", 1)[1]
    base = push_image(owner.registry, f"{owner.name}/base", "latest")
    stranger = people.user("stranger")
    push_image(stranger.registry, f"{stranger.name}/secret", "latest")  # private: the child's owner may not pull it
    dockerfile = (
        f"FROM --platform=linux/amd64 {host}/{owner.name}/base:latest AS first\n"
        f"FROM {host}/{stranger.name}/secret:latest\n"
        "FROM first\n"
        "ECHO child\n"
    )
    repo.tree.commit({"Dockerfile": dockerfile}, "on base")
    repo.tree.push("main")
    repo.rule(source_type="Branch", source_name="main", tag="latest")
    started = owner.api.post(f"{repo.base}/builds", json={"source_type": "Branch", "source_name": "main"})
    (first,) = started.json()["builds"]
    assert repo.finished(first)["state"] == "succeeded"
    log = repo.owner.api.get(f"{repo.base}/builds/{first}/logs").text
    # the token pulls the base its Dockerfile names (found before the build), never someone else's private image
    assert f"base {host}/{owner.name}/base:latest -> {base.digest}" in log
    assert f"base {host}/{stranger.name}/secret:latest -> not pullable" in log

    push_image(owner.registry, f"{owner.name}/base", "latest")  # a new base image
    dependent = wait_for(
        lambda: [b for b in repo.builds() if b["trigger"] == "base-image"], timeout=30, what="the dependent build"
    )
    assert len(dependent) == 1
    assert repo.finished(dependent[0]["id"])["state"] == "succeeded"
    # re-tagging the same base image stores nothing new: no build
    manifest = owner.registry.get(f"/v2/{owner.name}/base/manifests/latest", headers={"Accept": OCI_MANIFEST})
    owner.registry.put(
        f"/v2/{owner.name}/base/manifests/again", content=manifest.content, headers={"Content-Type": OCI_MANIFEST}
    )
    push_image(owner.registry, f"{owner.name}/base", "other")  # a tag the child is not built from
    wait_for(lambda: all(b["state"] in FINISHED for b in repo.builds()), what="builds settled")
    assert len([b for b in repo.builds() if b["trigger"] == "base-image"]) == 1


def test_cancel_stops_a_running_build(people: People, gitserver: GitServer, tmp_path: Path) -> None:
    repo = link(people, gitserver, tmp_path, "slow", {"Dockerfile": "SLEEP 60\n"})
    repo.rule(source_type="Branch", source_name="main", tag="latest")
    (build,) = repo.owner.api.post(f"{repo.base}/builds", json={"source_name": "main"}).json()["builds"]
    wait_for(lambda: repo.build(build)["state"] == "building", timeout=30, what="building")
    cancelled = repo.owner.api.post(f"{repo.base}/builds/{build}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    done = repo.finished(build, timeout=10)
    assert done["state"] == "cancelled"
    assert repo.tags() == []


def test_secret_build_args_never_reach_the_log(people: People, gitserver: GitServer, tmp_path: Path) -> None:
    repo = link(people, gitserver, tmp_path, "secrets", {"Dockerfile": "ECHO say ${GREETING} and ${TOKEN}\n"})
    rule = repo.rule(
        source_name="main",
        tag="latest",
        build_args=[{"name": "GREETING", "value": "hi"}, {"name": "TOKEN", "value": "tok-very-secret", "secret": True}],
    )
    assert rule["build_args"] == [
        {"name": "GREETING", "value": "hi", "secret": False},
        {"name": "TOKEN", "value": None, "secret": True},
    ]
    (build,) = repo.owner.api.post(f"{repo.base}/builds", json={"source_name": "main"}).json()["builds"]
    assert repo.finished(build)["state"] == "succeeded"
    log = repo.owner.api.get(f"{repo.base}/builds/{build}/logs").text
    assert "say hi and ***" in log
    assert "tok-very-secret" not in log
    assert "tok-very-secret" not in json.dumps(repo.owner.api.get(f"{repo.base}/build-rules").json())


def test_polling_listing_and_build_events(people: People, gitserver: GitServer, tmp_path: Path) -> None:
    repo = link(people, gitserver, tmp_path, "polled", {"Dockerfile": "ECHO polled\n"}, poll_interval_seconds=60)
    server = people.server
    with WebhookReceiver() as receiver:
        for payload_format in ("dockerhub", "dockyard"):
            hook = repo.owner.api.post(
                f"/api/v2/namespaces/{repo.owner.name}/repositories/polled/webhooks",
                json={
                    "name": payload_format,
                    "url": receiver.url(f"/{payload_format}"),
                    "events": [
                        "build_queued",
                        "build_started",
                        "build_building",
                        "build_pushing",
                        "build_signing",
                        "build_succeeded",
                    ],
                    "payload_format": payload_format,
                },
            )
            assert hook.status_code == 201, hook.text
        repo.rule(source_type="Branch", source_name="/.*/", tag="{sourceref}")
        name = f"{repo.owner.name}/polled"

        def polled() -> bool:
            rows = server.query_sql("SELECT polled_at FROM build_links WHERE repository = :r", r=name)
            return rows[0][0] is not None

        wait_for(polled, timeout=30, what="the first poll")  # it records the refs and builds nothing
        assert repo.builds() == []
        repo.tree.branch("dev")
        commit = repo.tree.commit({"dev.txt": "dev"}, "on dev")
        repo.tree.push("dev")
        server.execute_sql(
            "UPDATE build_links SET polled_at = :t WHERE repository = :r", t=datetime(2000, 1, 1), r=name
        )
        (build,) = wait_for(repo.builds, timeout=30, what="a build queued by polling")
        assert (build["trigger"], build["source_name"], build["commit"]) == ("poll", "dev", commit)
        assert repo.finished(build["id"])["tags"] == ["dev"]

        # build now without a ref: every ref some rule matches, listed by a background job
        listed = repo.owner.api.post(f"{repo.base}/builds", json={})
        assert (listed.status_code, listed.json()) == (202, {"builds": []})
        by_api = wait_for(
            lambda: len(b := [x for x in repo.builds() if x["trigger"] == "api"]) == 2 and b, what="two builds"
        )
        assert sorted(b["source_name"] for b in by_api) == ["dev", "main"]

        hub = receiver.wait_for(6, path="/dockerhub", timeout=20)
        events = [json.loads(r.body).get("event") for r in hub[:6]]
        assert events == [
            "build_queued",
            "build_started",
            "build_building",
            "build_pushing",
            "build_signing",
            "build_succeeded",
        ]
        succeeded = json.loads(hub[5].body)
        assert succeeded["repository"]["is_trusted"] is True
        assert succeeded["repository"]["dockerfile"] == "Dockerfile"
        assert succeeded["push_data"]["tag"] == "dev"
        (mine,) = [
            json.loads(r.body)
            for r in receiver.wait_for(6, path="/dockyard", timeout=20)
            if json.loads(r.body)["event"] == "build_succeeded"
        ][:1]
        details = mine["details"]["build"]
        assert (details["id"], details["commit"], details["ref"], details["tags"]) == (
            build["id"],
            commit,
            "dev",
            ["dev"],
        )
        assert details["duration_seconds"] > 0
        assert mine["digest"] == repo.build(build["id"])["digest"]


def test_deleting_the_repository_takes_its_link_and_history(
    people: People, gitserver: GitServer, tmp_path: Path
) -> None:
    repo = link(people, gitserver, tmp_path, "gone", {"Dockerfile": "ECHO x\n"})
    repo.rule(source_name="main", tag="latest")
    (build,) = repo.owner.api.post(f"{repo.base}/builds", json={"source_name": "main"}).json()["builds"]
    repo.finished(build)
    hub = f"/api/v2/namespaces/{repo.owner.name}/repositories/gone"
    assert repo.owner.api.delete(hub).status_code in (202, 204)
    create_repository(repo.owner, "gone")
    assert repo.owner.api.get(f"{repo.base}/build-link").status_code == 404
    assert repo.builds() == []
    assert repo.owner.api.get(hub).json()["is_automated"] is False
    # the old secret opens nothing any more
    assert repo.github(people.anonymous, "refs/heads/main", repo.tree.head(), "m").status_code == 401


def test_badge_and_pages(people: People, gitserver: GitServer, tmp_path: Path) -> None:
    repo = link(people, gitserver, tmp_path, "shown", {"Dockerfile": "ECHO on the page\n"}, public=True)
    hidden = link(people, gitserver, tmp_path, "hidden", {"Dockerfile": "ECHO x\n"})
    visitor = people.anonymous
    page = f"/r/{repo.owner.name}/shown"
    assert "none" in visitor.get(f"{page}/badge.svg").text
    repo.rule(source_name="main", tag="latest")
    (build,) = repo.owner.api.post(f"{repo.base}/builds", json={"source_name": "main"}).json()["builds"]
    repo.finished(build)
    badge = visitor.get(f"{page}/badge.svg")
    assert badge.status_code == 200
    assert badge.headers["content-type"].startswith("image/svg+xml")
    assert "passing" in badge.text
    assert "passing" in visitor.get(f"{page}/badge.svg", params={"tag": "latest"}).text
    assert "none" in visitor.get(f"{page}/badge.svg", params={"tag": "other"}).text
    history = visitor.get(f"{page}/builds")
    assert history.status_code == 200
    assert build[:8] in history.text
    assert "Build now" not in history.text  # a visitor may not build
    one = visitor.get(f"{page}/builds/{build}")
    assert one.status_code == 200
    assert "STEP 1/1: ECHO on the page" in one.text
    # a private repository's badge and builds are the 404 of a missing one
    for path in ("badge.svg", "builds"):
        assert visitor.get(f"/r/{hidden.owner.name}/hidden/{path}").status_code == 404


def test_without_a_managed_key_the_attestations_are_attached_unsigned(
    people: People, gitserver: GitServer, tmp_path: Path
) -> None:
    """A namespace without a managed signing key: the build still succeeds with its SBOM and provenance attached as
    referrers of the image (DSSE envelopes without signatures), the image is not signed, and the log says why."""
    repo = link(people, gitserver, tmp_path, "unkeyed", {"Dockerfile": "ECHO unkeyed\n"})
    repo.rule(source_name="main", tag="latest")
    (build,) = repo.owner.api.post(f"{repo.base}/builds", json={"source_name": "main"}).json()["builds"]
    done = repo.finished(build)
    log = repo.owner.api.get(f"{repo.base}/builds/{build}/logs").text
    assert done["state"] == "succeeded", log
    assert "has no managed signing key" in log
    name = f"{repo.owner.name}/unkeyed"
    # (the inventory job attaches the plain SPDX document beside them: application/spdx+json, docs/scanning.md)
    listed = repo.owner.registry.get(
        f"/v2/{name}/referrers/{done['digest']}", params={"artifactType": "application/vnd.dsse.envelope.v1+json"}
    ).json()["manifests"]
    assert sorted(r["annotations"]["in-toto.io/predicate-type"] for r in listed) == [
        "https://slsa.dev/provenance/v1",
        "https://spdx.dev/Document",
    ]
    for referrer in listed:
        assert referrer["artifactType"] == "application/vnd.dsse.envelope.v1+json"
        manifest = repo.owner.registry.get(
            f"/v2/{name}/manifests/{referrer['digest']}", headers={"Accept": OCI_MANIFEST}
        )
        envelope = repo.owner.registry.get(f"/v2/{name}/blobs/{manifest.json()['layers'][0]['digest']}").json()
        assert envelope["signatures"] == []
    signature_tag = done["digest"].replace(":", "-") + ".sig"
    assert repo.owner.registry.get(f"/v2/{name}/manifests/{signature_tag}").status_code == 404
