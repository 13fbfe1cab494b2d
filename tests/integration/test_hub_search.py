"""``docker search`` over the repositories a caller may see: ranking (exact name, prefix, contains, description),
ties by stars then pulls, LIKE wildcards taken literally, pages, and speed over 100,000 repositories."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from dockyard.authz.principal import ANONYMOUS
from dockyard.core.paging import PageRequest
from dockyard.models import Repository
from dockyard.models.base import utcnow
from dockyard.repos.search import search
from tests.support.hub_services import HubEnv, hub_env

P1 = PageRequest(1, 100)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[HubEnv]:
    async with hub_env(tmp_path) as e:
        yield e


async def add(env: HubEnv, rows: list[dict[str, Any]]) -> None:
    """Repositories straight into the table (search needs no content)."""
    now = utcnow()
    values = [
        {
            "name": row["name"],
            "namespace": row["name"].partition("/")[0] if "/" in row["name"] else "library",
            "is_private": row.get("private", False),
            "description": row.get("description", ""),
            "star_count": row.get("stars", 0),
            "pull_count": row.get("pulls", 0),
            "created_at": now,
        }
        for row in rows
    ]
    async with env.db.write() as conn:
        await conn.execute(insert(Repository), values)


async def names(env: HubEnv, query: str, actor: Any = ANONYMOUS, page: PageRequest = P1) -> list[str]:
    return [r.name for r in (await search(env.ctx, actor, query, page)).items]


async def test_ranking(env: HubEnv) -> None:
    owner = await env.user()
    await add(
        env,
        [
            {"name": "acme/redis", "stars": 1, "pulls": 50},
            {"name": "other/redis", "stars": 5},
            {"name": "redis", "stars": 1, "pulls": 900},  # library's; same stars as acme/redis, more pulls
            {"name": "x/redis-tools", "stars": 100},
            {"name": "y/myredis", "stars": 3},
            {"name": "redisco/web", "stars": 7},  # the namespace contains it: a name match, not a prefix
            {"name": "z/cache", "description": "A REDIS compatible cache", "stars": 1000},
            {"name": "z/unrelated", "description": "nothing to see"},
            {"name": f"{owner.name}/redis", "private": True, "stars": 10},
        ],
    )
    expected = ["other/redis", "redis", "acme/redis", "x/redis-tools", "redisco/web", "y/myredis", "z/cache"]
    assert await names(env, "Redis") == expected
    results = await search(env.ctx, ANONYMOUS, "  redis ", PageRequest(2, 3))
    assert ([r.name for r in results.items], results.count) == (expected[3:6], 7)
    first = (await search(env.ctx, ANONYMOUS, "cache", P1)).items[0]
    assert (first.name, first.description, first.star_count, first.is_official, first.is_automated) == (
        "z/cache",
        "A REDIS compatible cache",
        1000,
        False,
        False,
    )
    # The owner sees their private repository too, ranked among the exact matches by its stars.
    assert (await names(env, "redis", owner))[:2] == [f"{owner.name}/redis", "other/redis"]
    # A full name matches exactly; wildcards are literal; nothing found is an empty page.
    assert (await names(env, "acme/redis"))[0] == "acme/redis"
    assert await names(env, "re_is") == []
    assert await names(env, "%") == []
    empty = await search(env.ctx, ANONYMOUS, "no-such-thing", P1)
    assert (empty.items, empty.count) == ([], 0)


async def test_fast_on_100k_repositories(env: HubEnv) -> None:
    batch = 20_000
    for start in range(0, 100_000, batch):
        await add(
            env,
            [
                {
                    "name": f"ns{i % 500}/repo{i}",
                    "description": f"service number {i}",
                    "private": i % 3 == 0,
                    "stars": i % 17,
                }
                for i in range(start, start + batch)
            ],
        )
    user = await env.user()
    await search(env.ctx, ANONYMOUS, "warm-up", P1)
    started = time.perf_counter()
    results = await search(env.ctx, user, "repo4243", P1)
    anonymous = await search(env.ctx, ANONYMOUS, "number 99", PageRequest(3, 25))
    elapsed = time.perf_counter() - started
    assert results.items[0].name == "ns243/repo4243"
    assert results.count == len([i for i in range(100_000) if "repo4243" in f"repo{i}" and i % 3 != 0])
    assert anonymous.count == len([i for i in range(100_000) if "number 99" in f"number {i}" and i % 3 != 0])
    assert elapsed < 2.0, f"two searches over 100,000 repositories took {elapsed:.2f} s"
