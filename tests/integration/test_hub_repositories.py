"""RepositoryService over a real database and blob store: visibility (private never leaked), listing order and
pages, the detail view, create / update / delete with their audit entries and events, and stars."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dockyard.authz.principal import ANONYMOUS, OPEN
from dockyard.core.paging import PageRequest
from dockyard.errors import Conflict, Denied, Invalid, NotFound, Unauthorized
from dockyard.models import AuditEntry, Event, Manifest, Repository, Tag, Upload
from dockyard.models.base import utcnow
from tests.support.checks import unique
from tests.support.hub_services import OCI_INDEX, OCI_MANIFEST, HubEnv, hub_env, sha256

P1 = PageRequest(1, 100)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[HubEnv]:
    async with hub_env(tmp_path) as e:
        yield e


async def audit_actions(env: HubEnv, namespace: str) -> list[tuple[str, str]]:
    async with env.db.read() as conn:
        rows = await conn.execute(
            select(AuditEntry.action, AuditEntry.target)
            .where(AuditEntry.namespace == namespace)
            .order_by(AuditEntry.id)
        )
        return [(row.action, row.target) for row in rows]


async def events(env: HubEnv, repository: str) -> list[str]:
    async with env.db.read() as conn:
        rows = await conn.execute(select(Event.type).where(Event.repository == repository).order_by(Event.id))
        return list(rows.scalars())


async def test_private_repositories_are_never_leaked(env: HubEnv) -> None:
    alice = await env.user()
    bob = await env.user()
    public, private = f"{alice.name}/pub", f"{alice.name}/priv"
    await env.push_image(public)
    await env.push_image(private)
    await env.set_private(public, False)

    seen = await env.repos.get(ANONYMOUS, alice.name, "pub")
    assert (seen.name, seen.namespace, seen.full_name, seen.is_private) == ("pub", alice.name, public, False)
    assert (seen.permissions.read, seen.permissions.write, seen.permissions.admin) == (True, False, False)
    for stranger in (ANONYMOUS, bob):
        with pytest.raises(NotFound) as missing:
            await env.repos.get(stranger, alice.name, "priv")
        assert missing.value.subject == "repository"
        # The same answer as for a repository that does not exist at all.
        with pytest.raises(NotFound):
            await env.repos.get(stranger, alice.name, "nothing-here")
        listed = await env.repos.list_namespace(stranger, alice.name, P1)
        assert [r.name for r in listed.items] == ["pub"]
        assert listed.count == 1
    own = await env.repos.get(alice, alice.name, "priv")
    assert own.is_private
    assert (own.permissions.read, own.permissions.write, own.permissions.admin) == (True, True, True)
    assert own.affiliation == "owner"
    assert (await env.repos.list_namespace(alice, alice.name, P1)).count == 2
    # A grant makes a private repository visible to its grantee, at the granted level.
    await env.grant(private, bob, "read")
    granted = await env.repos.get(bob, alice.name, "priv")
    assert (granted.permissions.read, granted.permissions.write) == (True, False)
    # Site administrators and open servers see everything.
    admin = await env.user(admin=True)
    assert (await env.repos.list_namespace(admin, alice.name, P1)).count == 2
    assert (await env.repos.get(OPEN, alice.name, "priv")).permissions.admin


async def test_unknown_namespace_and_library(env: HubEnv) -> None:
    for name_filter in (None, "x"):
        with pytest.raises(NotFound) as missing:
            await env.repos.list_namespace(ANONYMOUS, unique("nobody"), P1, name_filter=name_filter)
        assert missing.value.subject == "account"
    empty = await env.repos.list_namespace(ANONYMOUS, "library", P1)
    assert (empty.items, empty.count) == ([], 0)
    # One-component names belong to library and keep their name; library/x is found under library as well.
    name = unique("img")
    await env.org("library", owner=await env.user(admin=True))  # an administrator's first push creates it
    await env.push_image(name)
    await env.push_image(f"library/{name}x")
    for repo in (name, f"library/{name}x"):
        await env.set_private(repo, False)
    listed = await env.repos.list_namespace(ANONYMOUS, "library", P1)
    assert [(r.name, r.full_name) for r in listed.items] == [(name, name), (f"{name}x", f"library/{name}x")]
    assert (await env.repos.get(ANONYMOUS, "library", name)).full_name == name
    assert (await env.repos.get(ANONYMOUS, "library", f"{name}x")).full_name == f"library/{name}x"
    # A namespace without an account is still listed when the caller sees repositories in it (pushed on an
    # open server, say), and is unknown otherwise.
    await env.open_server().push_image("ghost/app")
    assert (await env.repos.list_namespace(OPEN, "ghost", P1)).count == 1
    with pytest.raises(NotFound):
        await env.repos.list_namespace(ANONYMOUS, "ghost", P1)


async def test_ordering_filter_and_pages(env: HubEnv) -> None:
    owner = await env.user()
    ns = owner.name
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    now = utcnow()
    for i, short in enumerate(names):
        repo = f"{ns}/{short}"
        await env.push_image(repo)
        await env.set_columns(repo, pull_count=(i * 7) % 5, last_pushed_at=now - timedelta(hours=i))

    async def order(ordering: str | None) -> list[str]:
        page = await env.repos.list_namespace(owner, ns, P1, ordering=ordering)
        return [r.name for r in page.items]

    assert await order(None) == sorted(names)
    assert await order("name") == sorted(names)
    assert await order("-name") == sorted(names, reverse=True)
    assert await order("-last_updated") == names  # pushed one hour apart, newest first
    assert await order("last_updated") == names[::-1]
    pulls = {short: (i * 7) % 5 for i, short in enumerate(names)}
    assert await order("-pull_count") == sorted(names, key=lambda n: (-pulls[n], n))
    assert await order("pull_count") == sorted(names, key=lambda n: (pulls[n], n))
    with pytest.raises(Invalid):
        await order("stars")

    second = await env.repos.list_namespace(owner, ns, PageRequest(2, 2))
    assert [r.name for r in second.items] == ["charlie", "delta"]
    assert (second.count, second.has_next) == (5, True)
    last = await env.repos.list_namespace(owner, ns, PageRequest(3, 2))
    assert ([r.name for r in last.items], last.has_next) == (["echo"], False)

    filtered = await env.repos.list_namespace(owner, ns, P1, name_filter="HA")
    assert [r.name for r in filtered.items] == ["alpha", "charlie"]
    assert filtered.count == 2
    # The namespace itself is not part of the name a filter sees; LIKE wildcards are literal.
    assert (await env.repos.list_namespace(owner, ns, P1, name_filter=ns[:4])).count == 0
    assert (await env.repos.list_namespace(owner, ns, P1, name_filter="%")).count == 0


async def test_detail_view(env: HubEnv) -> None:
    owner = await env.user()
    viewer = await env.user()
    collaborator = await env.user()
    repo = f"{owner.name}/app"
    amd = await env.push_image(repo, "amd")
    arm = await env.push_image(repo, "arm", arch="arm64")
    await env.push_index(repo, "multi", [(amd, {"os": "linux", "architecture": "amd64"}), (arm, None)])
    await env.grant(repo, collaborator, "write")
    await env.set_private(repo, False)
    await env.repos.star(viewer, owner.name, "app")

    view = await env.repos.get(viewer, owner.name, "app")
    assert view.repository_type == "image"
    assert (view.status, view.status_description) == (1, "active")
    assert view.media_types == tuple(sorted({OCI_MANIFEST, OCI_INDEX}))
    assert view.content_types == ("image",)
    assert view.storage_size == amd.size + arm.size
    assert view.categories == ()
    assert (view.user, view.hub_user, view.is_automated, view.source) == (owner.name, owner.name, False, None)
    assert view.has_starred
    assert view.star_count == 1
    assert view.collaborator_count == 1
    assert view.affiliation == ""
    assert not view.immutable_tags_settings.enabled
    assert view.immutable_tags_settings.rules == ()
    assert view.date_registered <= view.last_updated <= view.last_modified
    assert not (await env.repos.get(owner, owner.name, "app")).has_starred

    # An artifact (config that is no image config) is content type "artifact".
    await env.push_image(repo, "chart", config_type="application/vnd.cncf.helm.config.v1+json")
    assert (await env.repos.get(viewer, owner.name, "app")).content_types == ("artifact", "image")


async def test_create(env: HubEnv) -> None:
    owner = await env.user()
    other = await env.user()
    created = await env.repos.create(owner, owner.name, "fresh", description="short", full_description="# long")
    assert (created.name, created.description, created.full_description) == ("fresh", "short", "# long")
    assert created.is_private  # the server default
    assert created.storage_size == 0
    assert (await env.repos.create(owner, owner.name, "open-one", is_private=False)).is_private is False
    assert await audit_actions(env, owner.name) == [
        ("repo.create", f"{owner.name}/fresh"),
        ("repo.create", f"{owner.name}/open-one"),
    ]
    assert await events(env, f"{owner.name}/fresh") == ["repository.created"]

    with pytest.raises(Conflict):
        await env.repos.create(owner, owner.name, "fresh")
    with pytest.raises(Denied):
        await env.repos.create(other, owner.name, "intruder")
    with pytest.raises(NotFound) as unknown:
        await env.repos.create(owner, unique("nobody"), "x1")
    assert unknown.value.subject == "account"
    for bad in ("a", "UPPER", "-dash", "x" * 256, "a//b"):
        with pytest.raises(Invalid):
            await env.repos.create(owner, owner.name, bad)
    with pytest.raises(Invalid):
        await env.repos.create(owner, owner.name, "long-text", description="x" * 101)
    with pytest.raises(Invalid):
        await env.repos.create(owner, owner.name, "long-text", full_description="x" * 25_001)
    # Deeper names are allowed (OCI grammar), and a pushed repository conflicts like a created one.
    assert (await env.repos.create(owner, owner.name, "group/sub")).name == "group/sub"
    await env.push_image(f"{owner.name}/pushed")
    with pytest.raises(Conflict):
        await env.repos.create(owner, owner.name, "pushed")

    # Organizations: owners create, members may not; the organization's default visibility applies.
    member = await env.user()
    org = await env.org(owner=owner, members=(member,))
    await env.set_account(org, default_private=False)
    assert (await env.repos.create(owner, org, "team-app")).is_private is False
    with pytest.raises(Denied):
        await env.repos.create(member, org, "member-app")
    # Robots and anonymous callers never create repositories.
    with pytest.raises(Denied):
        await env.repos.create(ANONYMOUS, owner.name, "anon")


async def test_update(env: HubEnv) -> None:
    owner = await env.user()
    writer = await env.user()
    stranger = await env.user()
    repo = f"{owner.name}/app"
    await env.push_image(repo)
    await env.grant(repo, writer, "write")

    updated = await env.repos.update(owner, owner.name, "app", description="new", full_description="## readme")
    assert (updated.description, updated.full_description, updated.is_private) == ("new", "## readme", True)
    made_public = await env.repos.update(owner, owner.name, "app", is_private=False, source_ip="10.0.0.9")
    assert not made_public.is_private
    unchanged = await env.repos.update(owner, owner.name, "app", description="new")
    assert unchanged.description == "new"
    assert await audit_actions(env, owner.name) == [
        ("repo.create", repo),  # by the push
        ("repo.tag.push", f"{repo}:latest"),
        ("repo.update", repo),
        ("repo.change_privacy", repo),
    ]
    async with env.db.read() as conn:
        ip = (
            await conn.execute(select(AuditEntry.source_ip).where(AuditEntry.action == "repo.change_privacy"))
        ).scalar_one()
    assert ip == "10.0.0.9"

    with pytest.raises(Denied):
        await env.repos.update(writer, owner.name, "app", description="mine")
    await env.repos.update(owner, owner.name, "app", is_private=True)
    with pytest.raises(NotFound):
        await env.repos.update(stranger, owner.name, "app", description="x")
    with pytest.raises(Invalid):
        await env.repos.update(owner, owner.name, "app", description="x" * 101)


async def test_delete(env: HubEnv) -> None:
    owner = await env.user()
    writer = await env.user()
    repo = f"{owner.name}/doomed"
    image = await env.push_image(repo, "v1")
    await env.push_index(repo, "multi", [(image, {"os": "linux", "architecture": "amd64"})])
    await env.grant(repo, writer, "write")
    await env.repos.star(owner, owner.name, "doomed")
    session = await env.registry.uploads.start(repo)
    assert session.id in await env.ctx.store.list_uploads()

    with pytest.raises(Denied):
        await env.repos.delete(writer, owner.name, "doomed")
    with pytest.raises(NotFound):
        await env.repos.delete(ANONYMOUS, owner.name, "doomed")
    await env.repos.delete(owner, owner.name, "doomed", source_ip="10.1.1.1")

    with pytest.raises(NotFound):
        await env.repos.get(owner, owner.name, "doomed")
    async with env.db.read() as conn:
        for table in (Repository, Manifest, Tag, Upload):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 0
    assert session.id not in await env.ctx.store.list_uploads()
    assert (await events(env, repo))[-1] == "repository.deleted"
    assert (await audit_actions(env, owner.name))[-1] == ("repo.delete", repo)
    # Blobs stay for garbage collection; the name can be used again.
    assert await env.ctx.store.stat(sha256(image.config)) == len(image.config)
    assert (await env.repos.create(owner, owner.name, "doomed")).storage_size == 0


async def test_stars(env: HubEnv) -> None:
    owner = await env.user()
    fan = await env.user()
    other = await env.user()
    repo = f"{owner.name}/starry"
    hidden = f"{owner.name}/hidden"
    await env.push_image(repo)
    await env.push_image(hidden)
    await env.set_private(repo, False)

    await env.repos.star(fan, owner.name, "starry")
    await env.repos.star(fan, owner.name, "starry")  # twice is once
    await env.repos.star(other, owner.name, "starry")
    assert (await env.repos.get(fan, owner.name, "starry")).star_count == 2
    await env.repos.unstar(other, owner.name, "starry")
    await env.repos.unstar(other, owner.name, "starry")  # no star, no error, no change
    view = await env.repos.get(fan, owner.name, "starry")
    assert (view.star_count, view.has_starred) == (1, True)

    with pytest.raises(Unauthorized):
        await env.repos.star(ANONYMOUS, owner.name, "starry")
    with pytest.raises(Denied):
        await env.repos.star(OPEN, owner.name, "starry")
    with pytest.raises(NotFound):
        await env.repos.star(fan, owner.name, "hidden")

    await env.repos.star(owner, owner.name, "hidden")
    await env.repos.star(owner, owner.name, "starry")
    mine = await env.repos.list_starred(owner, owner.name, P1)
    assert [r.full_name for r in mine.items] == [repo, hidden]  # most recently starred first
    assert mine.count == 2
    # Others see only what they may see of someone's stars.
    theirs = await env.repos.list_starred(ANONYMOUS, owner.name, P1)
    assert ([r.full_name for r in theirs.items], theirs.count) == ([repo], 1)
    with pytest.raises(NotFound):
        await env.repos.list_starred(ANONYMOUS, unique("nobody"), P1)
