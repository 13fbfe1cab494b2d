"""Servers in one process share one Hub API app (``http.api.app.served_api``: FastAPI sets an app's routes up
anew for each app) and keep their own services: what one server's API is asked is answered from its own
deployment, never the other's — also when both serve at once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import cast

import pytest

from dockyard.http.api.app import served_api
from dockyard.http.api.deps import ApiServices
from tests.support.app_server import AppServer
from tests.support.hub_api import People, create_repository, get_json, repo_url


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[People, People]]:
    servers = [AppServer(tmp_path_factory.mktemp(name) / "data", secure=True) for name in ("first", "second")]
    for server in servers:
        server.start()
    people = [People.open(server) for server in servers]
    try:
        yield people[0], people[1]
    finally:
        for made in people:
            made.close()
        for server in servers:
            server.stop()


def test_each_server_answers_from_its_own_deployment(two: tuple[People, People]) -> None:
    first, second = two
    admins = first.admin(), second.admin()
    create_repository(admins[0], "only-on-the-first")
    create_repository(admins[1], "only-on-the-second")

    def names(index: int) -> set[str]:
        page = get_json(admins[index].api, repo_url("admin"), page_size=100)
        return {item["name"] for item in page["results"]}

    with ThreadPoolExecutor(8) as pool:  # both at once, many times
        seen = list(pool.map(names, [0, 1] * 16))
    assert seen == [{"only-on-the-first"}, {"only-on-the-second"}] * 16


def test_one_app_per_process() -> None:
    one, other = (cast(ApiServices, object()) for _ in range(2))
    served = served_api(one), served_api(other)
    assert served[0].app is served[1].app  # type: ignore[attr-defined]
    assert (served[0].services, served[1].services) == (one, other)  # type: ignore[attr-defined]
