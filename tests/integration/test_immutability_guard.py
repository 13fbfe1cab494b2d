"""Tag immutability below the HTTP layer: what the manifest PUT's write unit costs with and without rules (a
repository without namespace rules pays no extra statement; the repository's own rules come with the look-up the
push makes anyway), the rule matching (whole tag; glob and RE2) and ``protected`` — the question retention and the
Hub API ask — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from dockyard.errors import Denied
from dockyard.models import Repository
from dockyard.registry.immutability import NamespaceRule, Rule, check_rules, replace_namespace_rules
from dockyard.repos.immutability import guard, protected
from tests.support.hub_services import OCI_MANIFEST, HubEnv, hub_env


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[HubEnv]:
    async with hub_env(tmp_path, open=True) as made:
        yield made


@contextmanager
def statements(env: HubEnv) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs, on every engine the units of work use."""
    seen: list[str] = []
    db = env.db
    engines: list[Any] = [db.engine.sync_engine]
    if db._unit_base is not None:
        engines.append(db._unit_base)

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def _retag_cost(env: HubEnv, repo: str, body: bytes, tag: str) -> int:
    with statements(env) as seen:
        await env.registry.manifests.put(repo, tag, body, OCI_MANIFEST)
    return len(seen)


async def _set(env: HubEnv, repo: str, enabled: bool, rules: list[str]) -> None:
    async with env.db.write() as conn:
        await conn.execute(
            update(Repository)
            .where(Repository.name == repo)
            .values(immutable_tags=enabled, immutable_tags_rules=json.dumps(rules))
        )


async def test_the_push_pays_a_statement_only_for_namespace_rules(env: HubEnv) -> None:
    plain, own, spaced = "plain/app", "own/app", "spaced/app"
    bodies = {}
    for repo in (plain, own, spaced):
        bodies[repo] = (await env.push_image(repo, "base")).body
    await _set(env, own, True, ["v.*"])
    async with env.db.write() as conn:
        await replace_namespace_rules(conn, "spaced", [NamespaceRule("v*", "glob")])

    # A re-tag of a stored manifest: the look-up, the manifest insert and the rest of the unit.
    baseline = await _retag_cost(env, plain, bodies[plain], "t1")
    if env.db.is_sqlite:  # the figure docs/performance.md gives for a re-tag before immutability existed
        assert baseline == 9
    assert baseline == await _retag_cost(env, plain, bodies[plain], "t2")
    # The repository's own rules come with the look-up: the same statements, for a protected tag too (its claim
    # replaces the upsert).
    assert await _retag_cost(env, own, bodies[own], "t1") == baseline
    assert await _retag_cost(env, own, bodies[own], "v1") == baseline
    # Namespace rules: one SELECT of them.
    assert await _retag_cost(env, spaced, bodies[spaced], "t1") == baseline + 1


async def test_protected_answers_for_repository_and_namespace_rules(env: HubEnv) -> None:
    await env.push_image("acme/app", "v1.0")
    await env.push_image("acme/web", "v1.0")
    await env.push_image("other/app", "v1.0")
    await _set(env, "acme/app", True, ["v[0-9.]+", ".*-RELEASE"])
    async with env.db.write() as conn:
        await replace_namespace_rules(conn, "acme", [NamespaceRule("stable", "glob", "web*")])
    async with env.db.read() as conn:
        rule = await protected(conn, "acme/app", "v1.0")
        assert rule == Rule("v[0-9.]+", "regex", "repository acme/app")
        assert (await protected(conn, "acme/app", "1.0-RELEASE")) == Rule(".*-RELEASE", "regex", "repository acme/app")
        assert await protected(conn, "acme/app", "dev-v1.0") is None  # whole-tag match
        assert await protected(conn, "acme/app", "stable") is None  # the namespace rule is for web* only
        assert (await protected(conn, "acme/web", "stable")) == Rule("stable", "glob", "namespace acme")
        assert await protected(conn, "acme/web", "v1.0") is None
        assert await protected(conn, "other/app", "v1.0") is None
        assert await protected(conn, "missing/app", "v1.0") is None
        found = await guard(conn, "acme/app")
        assert found is not None
        assert [tag for tag in ("v1", "v1.2.3", "latest", "x-RELEASE") if found.match(tag)] == [
            "v1",
            "v1.2.3",
            "x-RELEASE",
        ]
    # Disabled, the repository's rules are kept and no longer apply.
    await _set(env, "acme/app", False, ["v[0-9.]+"])
    async with env.db.read() as conn:
        assert await protected(conn, "acme/app", "v1.0") is None


async def test_moving_a_protected_tag_rolls_the_whole_push_back(env: HubEnv) -> None:
    first = await env.push_image("acme/app", "v1")
    await _set(env, "acme/app", True, ["v1"])
    with pytest.raises(Denied) as refused:
        await env.push_image("acme/app", "v1")
    assert refused.value.subject == "tag"
    assert 'rule "v1" of repository acme/app' in refused.value.message
    view = await env.registry.manifests.get("acme/app", "v1")
    assert view.digest == first.digest


def test_rules_are_re2_and_refuse_what_docker_hub_refuses() -> None:
    assert check_rules(["v.*", "v.*", "^[0-9]+$"]) == ["v.*", "^[0-9]+$"]
    for bad in ("a,b", "(", "", "x" * 256, "(?<=a)b"):  # lookbehind: Python has it, RE2 (Go) does not
        with pytest.raises(Exception, match="rule"):
            check_rules([bad])
