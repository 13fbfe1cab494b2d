"""AuditLogService: a namespace's entries, newest first, in Docker Hub's shape, with filters and pages; only the
namespace's owners (and administrators) may read them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from dockyard.authz.principal import ANONYMOUS
from dockyard.core.paging import PageRequest
from dockyard.errors import Denied, NotFound
from dockyard.models.base import utcnow
from tests.support.checks import unique
from tests.support.hub_services import HubEnv, hub_env

P1 = PageRequest(1, 100)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[HubEnv]:
    async with hub_env(tmp_path) as e:
        yield e


async def test_entries_filters_and_pages(env: HubEnv) -> None:
    owner = await env.user()
    member = await env.user()
    org = await env.org(owner=owner, members=(member,))
    before = utcnow()
    await env.repos.create(owner, org, "app", source_ip="192.0.2.1")
    image = await env.push_image(f"{org}/app", "v1", actor=member.name)
    await env.repos.update(owner, org, "app", is_private=False)
    await env.repos.create(owner, org, "other")
    after = utcnow()

    log = await env.audit.list(owner, org, page=P1)
    assert [(e.action, e.name) for e in log.items] == [
        ("repo.create", f"{org}/other"),
        ("repo.change_privacy", f"{org}/app"),
        ("repo.tag.push", f"{org}/app:v1"),
        ("repo.create", f"{org}/app"),
    ]
    assert log.count == 4
    oldest = log.items[-1]
    assert (oldest.account, oldest.actor, oldest.source_ip, oldest.data) == (
        org,
        owner.name,
        "192.0.2.1",
        {"is_private": True},
    )
    assert oldest.action_description == "created the repository"
    assert before <= oldest.timestamp <= after
    assert log.items[2].data == {"digest": image.digest}

    async def actions(**filters: object) -> list[str]:
        page = await env.audit.list(owner, org, page=P1, **filters)  # type: ignore[arg-type]
        return [e.action for e in page.items]

    assert await actions(action="repo.create") == ["repo.create", "repo.create"]
    assert await actions(name=f"{org}/app") == ["repo.change_privacy", "repo.tag.push", "repo.create"]
    assert await actions(name=f"{org}/ap") == []  # a name, not a prefix
    assert await actions(actor_name=member.name) == ["repo.tag.push"]
    assert await actions(since=after) == []
    assert await actions(until=before) == []
    assert len(await actions(since=before - timedelta(seconds=1), until=after + timedelta(seconds=1))) == 4
    second = await env.audit.list(owner, org, page=PageRequest(2, 3))
    assert ([e.action for e in second.items], second.count) == (["repo.create"], 4)


async def test_only_owners_read_the_log(env: HubEnv) -> None:
    owner = await env.user()
    member = await env.user()
    stranger = await env.user()
    admin = await env.user(admin=True)
    org = await env.org(owner=owner, members=(member,))
    await env.repos.create(owner, org, "app")
    await env.repos.create(owner, owner.name, "mine")

    assert (await env.audit.list(owner, org, page=P1)).count == 1
    assert (await env.audit.list(owner, owner.name, page=P1)).count == 1
    assert (await env.audit.list(admin, org, page=P1)).count == 1
    # A namespace is public: whoever is not its owner is refused (docs/auth.md, "Who decides: hide or deny").
    for outsider in (member, stranger, ANONYMOUS):
        with pytest.raises(Denied):
            await env.audit.list(outsider, org, page=P1)
        with pytest.raises(Denied):
            await env.audit.list(outsider, owner.name, page=P1)
    with pytest.raises(NotFound):
        await env.audit.list(owner, unique("nobody"), page=P1)
