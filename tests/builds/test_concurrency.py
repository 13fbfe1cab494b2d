"""The per-namespace build concurrency limit (``build_namespace_concurrency``): with a limit of one, the builds of
one namespace run one at a time, whichever of its repositories they are for (the others wait queued, then run),
while another namespace's build runs beside them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.builds.test_pipeline import Linked, link
from tests.support.build_executor import PIPELINE_ENV
from tests.support.gitserver import GitServer
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.hub_api import People, Person, create_repository

RUNNING = ("cloning", "building", "pushing")


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    return {
        **SIGN_IN_OFTEN,
        **PIPELINE_ENV,
        "DOCKYARD_BUILD_NAMESPACE_CONCURRENCY": "1",
        "DOCKYARD_JOBS_CONCURRENCY": "6",
    }


def linked(owner: Person, gitserver: GitServer, tmp_path: Path, name: str) -> Linked:
    create_repository(owner, name)
    tree = gitserver.create(f"{owner.name}-{name}", tmp_path / name)
    tree.commit({"Dockerfile": "SLEEP 2\n"}, "initial")
    tree.push("main")
    base = f"/api/v2/repositories/{owner.name}/{name}"
    created = owner.api.post(f"{base}/build-link", json={"url": tree.url})
    assert created.status_code == 201, created.text
    repo = Linked(owner, name, tree, created.json())
    repo.rule(source_name="main", tag="latest")
    return repo


def test_one_namespace_runs_one_build_at_a_time(people: People, gitserver: GitServer, tmp_path: Path) -> None:
    owner = people.user("busy")
    mine = [linked(owner, gitserver, tmp_path, name) for name in ("one", "two", "three")]
    elsewhere = link(people, gitserver, tmp_path, "elsewhere", {"Dockerfile": "SLEEP 2\n"})
    elsewhere.rule(source_name="main", tag="latest")

    seen: list[tuple[int, int]] = []  # (running in the busy namespace, running elsewhere) at each look
    stop = threading.Event()

    def running(namespace: str) -> int:
        # One query: a snapshot of the namespace's builds (the API, repository by repository, is not one).
        rows = people.server.query_sql("SELECT state FROM builds WHERE namespace = :n", n=namespace)
        return sum(row[0] in RUNNING for row in rows)

    def watch() -> None:
        while not stop.is_set():
            seen.append((running(owner.name), running(elsewhere.owner.name)))
            time.sleep(0.1)

    builds = [
        (repo, repo.owner.api.post(f"{repo.base}/builds", json={"source_name": "main"}).json()["builds"][0])
        for repo in [*mine, elsewhere]
    ]
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for repo, build in builds:
            done = repo.finished(build, timeout=120)
            log = repo.owner.api.get(f"{repo.base}/builds/{build}/logs").text
            assert done["state"] == "succeeded", f"{done}\n{log[-3000:]}"
    finally:
        stop.set()
        watcher.join()
    assert max(busy for busy, _ in seen) == 1, seen  # never two of the namespace's builds at once
    assert any(busy == 1 and other == 1 for busy, other in seen), seen  # another namespace is not held back
