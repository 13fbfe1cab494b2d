"""``GET /v1/search`` (``docker search``) against a server with authentication on: the index's v1 envelope field
by field, ranking (exact name, then prefix, then the name containing the query, then only the description;
ties by stars), pages, parameter limits, visibility (anonymous callers find public repositories only; the owner
also their private ones), Basic auth as the Docker Engine sends it, and ``podman search``, which reads the same
endpoint."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.checks import problem
from tests.support.hub_api import People, Person

ENVELOPE = {"query", "num_results", "num_pages", "page", "page_size", "results"}
RESULT = {"name", "description", "star_count", "is_official", "is_automated"}


@dataclass
class Corpus:
    """Repositories matching ``term`` in every way the ranking tells apart, and the people around them."""

    term: str
    alice: Person
    bob: Person
    public_ranked: list[str]  # what anyone finds, best first
    private: str


def create(person: Person, name: str, **body: Any) -> str:
    response = person.api.post(f"/api/v2/namespaces/{person.name}/repositories", json={"name": name, **body})
    assert response.status_code == 201, response.text
    return f"{person.name}/{name}"


def star(people: list[Person], repository: str) -> None:
    for person in people:
        assert person.api.post(f"/api/v2/repositories/{repository}/stars").status_code == 204


@pytest.fixture(scope="module")
def corpus(people: People) -> Corpus:
    term = f"kw{uuid.uuid4().hex[:8]}"
    alice, bob, carol = people.user("alice"), people.user("bob"), people.user("carol")
    exact = create(alice, term, description="the exact one", is_private=False)
    tools = create(alice, f"{term}-tools", is_private=False)
    extra = create(bob, f"{term}-extra", is_private=False)
    inside = create(alice, f"my-{term}-app", is_private=False)
    described = create(bob, "unrelated-name", description=f"mentions {term.upper()} in passing", is_private=False)
    private = create(alice, f"{term}-private", is_private=True)
    create(alice, "nothing-to-see", description="no match here", is_private=False)
    star([alice, carol], extra)  # two stars: first among the prefix matches
    star([carol], tools)
    return Corpus(term, alice, bob, [exact, extra, tools, inside, described], private)


def search(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/search", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == ENVELOPE
    for result in body["results"]:
        assert set(result) == RESULT
    return body


def found(body: dict[str, Any]) -> list[str]:
    return [result["name"] for result in body["results"]]


def test_envelope_and_ranking(people: People, corpus: Corpus) -> None:
    body = search(people.anonymous, q=corpus.term)
    assert body["query"] == corpus.term
    assert body["num_results"] == len(corpus.public_ranked)
    assert (body["num_pages"], body["page"], body["page_size"]) == (1, 1, 25)
    assert found(body) == corpus.public_ranked
    exact = body["results"][0]
    assert exact == {
        "name": corpus.public_ranked[0],
        "description": "the exact one",
        "star_count": 0,
        "is_official": False,
        "is_automated": False,
    }
    assert [r["star_count"] for r in body["results"][1:3]] == [2, 1]
    # Case does not matter; the query is echoed as sent.
    upper = search(people.anonymous, q=corpus.term.upper())
    assert upper["query"] == corpus.term.upper()
    assert found(upper) == corpus.public_ranked


def test_pages(people: People, corpus: Corpus) -> None:
    total = len(corpus.public_ranked)
    pages = [search(people.anonymous, q=corpus.term, n=2, page=page) for page in (1, 2, 3)]
    for number, body in enumerate(pages, start=1):
        assert (body["num_results"], body["num_pages"], body["page"], body["page_size"]) == (total, 3, number, 2)
    assert [name for body in pages for name in found(body)] == corpus.public_ranked
    beyond = search(people.anonymous, q=corpus.term, n=2, page=4)
    assert beyond["results"] == []
    assert beyond["num_results"] == total
    nothing = search(people.anonymous, q=f"{corpus.term}-no-such-thing")
    assert (nothing["num_results"], nothing["num_pages"], nothing["results"]) == (0, 0, [])


def test_parameter_limits(people: People) -> None:
    bad: list[dict[str, str | int]] = [
        {"q": "x", "n": 0},
        {"q": "x", "n": 101},
        {"q": "x", "page": 0},
        {"q": "x" * 256},
    ]
    for params in bad:
        problem(people.anonymous.get("/v1/search", params=params), 422)
    assert search(people.anonymous, q="x", n=100)["page_size"] == 100


def test_visibility(people: People, corpus: Corpus) -> None:
    assert corpus.private not in found(search(people.anonymous, q=corpus.term))
    assert corpus.private not in found(search(corpus.bob.api, q=corpus.term))
    mine = found(search(corpus.alice.api, q=corpus.term))
    assert corpus.private in mine
    assert len(mine) == len(corpus.public_ranked) + 1
    assert mine.index(corpus.private) > mine.index(corpus.public_ranked[0])  # a prefix match, after the exact one
    assert corpus.private in found(search(people.admin().api, q=corpus.term))


def test_basic_auth_as_the_docker_engine_sends_it(people: People, corpus: Corpus) -> None:
    headers = {"X-Docker-Token": "true"}
    response = people.anonymous.get(
        "/v1/search",
        params={"q": corpus.term, "n": 25},
        headers=headers,
        auth=(corpus.alice.name, corpus.alice.password),
    )
    assert response.status_code == 200, response.text
    assert corpus.private in found(response.json())
    wrong = people.anonymous.get(
        "/v1/search", params={"q": corpus.term}, headers=headers, auth=(corpus.alice.name, "wrong")
    )
    problem(wrong, 401)


@pytest.mark.clients
def test_podman_search(secure_server: AppServer, people: People, corpus: Corpus, tmp_path: Path) -> None:
    from tests.clients.conftest import make_containers_env

    podman = make_containers_env(tmp_path / "containers", secure_server).tool("podman")
    out = podman.json("search", "--tls-verify=false", "--format", "json", f"{secure_server.host}/{corpus.term}")
    names = [entry["Name"] for entry in out]
    assert names == [f"{secure_server.host}/{name}" for name in corpus.public_ranked]
    assert [entry["Stars"] for entry in out][:3] == [0, 2, 1]
    assert out[0]["Description"] == "the exact one"
