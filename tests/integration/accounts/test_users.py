"""UserService: who may create, change, disable and delete users; the first administrator; what deletion takes
with it; audit entries; passwords stored hashed."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select, update

from dockyard.auth.credentials import Authenticator
from dockyard.authz.principal import ANONYMOUS, OPEN, REPO_ADMIN
from dockyard.core.paging import PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, Invalid, NotFound, Unauthorized
from dockyard.events.outbox import REPOSITORY_DELETED
from dockyard.models import Account, Repository, Star
from dockyard.settings import Settings
from tests.support.accounts import (
    PASSWORD,
    Services,
    audit,
    events,
    make_org,
    make_repo,
    make_user,
    with_token,
)


async def test_admin_creates_a_user_who_can_sign_in(db: Database, settings: Settings, svc: Services) -> None:
    admin = await make_user(db, "root", admin=True)
    info = await svc.users.create_user("alice", "alice@example.com", "s3cret-pass", actor=admin, source_ip="10.0.0.1")
    assert (info.name, info.email, info.is_admin, info.disabled) == ("alice", "alice@example.com", False, False)
    assert info.password_changed_at is not None
    async with db.read() as conn:
        stored = str((await conn.execute(select(Account.password_hash).where(Account.name == "alice"))).scalar_one())
    assert "s3cret-pass" not in stored
    assert stored.startswith("$argon2id$")
    principal = await Authenticator(db, settings).login("alice", "s3cret-pass")
    assert principal.name == "alice"
    entry = (await audit(db, "alice"))[-1]
    assert entry == {
        "namespace": "alice",
        "action": "account.create",
        "actor": "root",
        "target": "alice",
        "source_ip": "10.0.0.1",
        "data": {"kind": "user", "is_admin": False},
    }


async def test_only_administrators_create_users(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    admin = await make_user(db, "root", admin=True)
    for actor in (alice, ANONYMOUS, with_token(admin, REPO_ADMIN)):
        with pytest.raises(Denied):
            await svc.users.create_user("bobby", None, "password1", actor=actor)
    assert (await svc.users.create_user("bobby", None, "password1", actor=OPEN)).name == "bobby"


async def test_create_user_validates_and_refuses_taken_names(db: Database, svc: Services) -> None:
    await make_user(db, "alice")
    await make_org(db, "acme", owners=[])
    for name in ("alice", "acme"):  # users and organizations share one namespace of names
        with pytest.raises(Conflict):
            await svc.users.create_user(name, None, "password1", actor=OPEN)
    with pytest.raises(Invalid):
        await svc.users.create_user("library", None, "password1", actor=OPEN)
    with pytest.raises(Invalid):
        await svc.users.create_user("Bob", None, "password1", actor=OPEN)
    with pytest.raises(Invalid):
        await svc.users.create_user("bobby", "not-an-email", "password1", actor=OPEN)
    with pytest.raises(Invalid):
        await svc.users.create_user("bobby", None, "short", actor=OPEN)


async def test_profile_is_changed_by_the_user_or_an_admin(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bobby")
    admin = await make_user(db, "root", admin=True)
    info = await svc.users.update_profile("alice", full_name="Alice A.", profile_url="https://a.example", actor=alice)
    assert (info.full_name, info.profile_url) == ("Alice A.", "https://a.example")
    assert (await svc.users.update_profile("alice", company="Acme", actor=admin)).company == "Acme"
    with pytest.raises(Denied):
        await svc.users.update_profile("alice", company="Evil", actor=bob)
    with pytest.raises(Denied):
        await svc.users.update_profile("alice", company="Evil", actor=with_token(alice, REPO_ADMIN))
    with pytest.raises(Invalid):
        await svc.users.update_profile("alice", profile_url="javascript:alert(1)", actor=alice)
    with pytest.raises(NotFound):
        await svc.users.update_profile("nobody", company="x", actor=admin)
    assert [e["data"] for e in await audit(db, "alice")] == [
        {"fields": ["full_name", "profile_url"]},
        {"fields": ["company"]},
    ]


async def test_change_password(db: Database, settings: Settings, svc: Services) -> None:
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bobby")
    auth = Authenticator(db, settings)
    with pytest.raises(Invalid):
        await svc.users.change_password("alice", "new-password-1", actor=alice)  # self must give the current one
    with pytest.raises(Denied):
        await svc.users.change_password("alice", "new-password-1", current="wrong-password", actor=alice)
    with pytest.raises(Denied):
        await svc.users.change_password("alice", "new-password-1", current=PASSWORD, actor=bob)
    with pytest.raises(Denied):
        await svc.users.change_password(
            "alice", "new-password-1", current=PASSWORD, actor=with_token(alice, REPO_ADMIN)
        )
    before = await svc.users.get_user("alice")
    await svc.users.change_password("alice", "new-password-1", current=PASSWORD, actor=alice)
    after = await svc.users.get_user("alice")
    assert after.password_changed_at is not None
    assert before.password_changed_at is not None
    assert after.password_changed_at > before.password_changed_at
    assert (await auth.login("alice", "new-password-1")).name == "alice"
    with pytest.raises(Unauthorized):
        await auth.login("alice", PASSWORD)
    await svc.users.change_password("alice", "by-the-operator", actor=OPEN)  # administrators need no current one
    assert (await auth.login("alice", "by-the-operator")).name == "alice"
    changes = [e["actor"] for e in await audit(db, "alice") if e["action"] == "account.password_change"]
    assert changes == ["alice", "open"]


async def test_disable_and_enable(db: Database, settings: Settings, svc: Services) -> None:
    alice = await make_user(db, "alice")
    admin = await make_user(db, "root", admin=True)
    with pytest.raises(Denied):
        await svc.users.set_disabled("alice", True, actor=alice)
    assert (await svc.users.set_disabled("alice", True, actor=admin)).disabled
    with pytest.raises(Unauthorized):
        await Authenticator(db, settings).login("alice", PASSWORD)
    assert not (await svc.users.set_disabled("alice", False, actor=admin)).disabled
    with pytest.raises(Conflict):
        await svc.users.set_disabled("root", True, actor=admin)  # not one's own account
    with pytest.raises(Conflict):
        await svc.users.set_disabled("root", True, actor=OPEN)  # nor the last administrator
    assert [e["action"] for e in await audit(db, "alice")] == ["account.disable", "account.enable"]


async def test_list_users_is_for_administrators(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    for name in ("carol", "bobby", "dave"):
        await make_user(db, name)
    await make_org(db, "acme", owners=[alice])
    page = await svc.users.list_users(PageRequest(page=1, page_size=3), actor=OPEN)
    assert [u.name for u in page.items] == ["alice", "bobby", "carol"]
    assert (page.count, page.has_next) == (4, True)
    with pytest.raises(Denied):
        await svc.users.list_users(PageRequest(), actor=alice)


async def test_delete_user_takes_repositories_memberships_and_stars(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bobby")
    await make_org(db, "acme", owners=[bob], members=[alice])
    await make_repo(db, "alice/one")
    await make_repo(db, "alice/two")
    starred = await make_repo(db, "bobby/app", private=False)
    async with db.write() as conn:
        await conn.execute(insert(Star).values(account_id=alice.account_id, repository_id=starred))
        await conn.execute(update(Repository).where(Repository.id == starred).values(star_count=1))
    with pytest.raises(Denied):
        await svc.users.delete_user("alice", actor=bob)
    with pytest.raises(Denied):
        await svc.users.delete_user("alice", actor=with_token(alice, REPO_ADMIN))
    assert await svc.users.delete_user("alice", actor=alice) == ["alice/one", "alice/two"]
    async with db.read() as conn:
        names = (await conn.execute(select(Repository.name, Repository.star_count))).all()
    assert [tuple(r) for r in names] == [("bobby/app", 0)]
    assert await events(db, REPOSITORY_DELETED) == ["alice/one", "alice/two"]
    with pytest.raises(NotFound):
        await svc.users.get_user("alice")
    members = await svc.orgs.list_members("acme", PageRequest(), actor=bob)
    assert [m.username for m in members.items] == ["bobby"]
    assert (await audit(db, "alice"))[-1]["action"] == "account.delete"


async def test_sole_owner_and_last_admin_cannot_be_deleted(db: Database, svc: Services) -> None:
    admin = await make_user(db, "root", admin=True)
    alice = await make_user(db, "alice")
    await make_org(db, "acme", owners=[alice])
    with pytest.raises(Conflict) as err:
        await svc.users.delete_user("alice", actor=admin)
    assert err.value.detail == {"organizations": ["acme"]}
    with pytest.raises(Conflict):
        await svc.users.delete_user("root", actor=OPEN)
    await make_user(db, "second", admin=True)
    await svc.users.delete_user("root", actor=OPEN)


async def test_ensure_admin(db: Database, settings: Settings, svc: Services) -> None:
    generated = await svc.users.ensure_admin("admin", None)
    assert generated is not None
    assert len(generated) >= 20
    assert (await Authenticator(db, settings).login("admin", generated)).is_admin
    assert await svc.users.ensure_admin("admin", None) is None  # an administrator exists: nothing to do
    async with db.read() as conn:
        stored = str((await conn.execute(select(Account.password_hash).where(Account.name == "admin"))).scalar_one())
    assert generated not in stored


@pytest.mark.scaleout_only  # SQLite runs one writer at a time: there is no "between" there
async def test_ensure_admin_when_another_replica_creates_it_between_the_checks(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two replicas start together: the other one's administrator is committed after this one found none, so its
    name is taken by an administrator by the time this one looks — not a conflict."""
    from dockyard.accounts import users as users_module

    real = users_module._admin_exists
    calls = 0

    async def admin_appears_after_the_first_checks(conn: object) -> bool:
        nonlocal calls
        calls += 1
        if calls <= 2:  # the read before the write, and the first check inside it
            if calls == 2:
                await make_user(db, "admin", admin=True)  # the other replica commits now
            return False
        return await real(conn)  # type: ignore[arg-type]

    monkeypatch.setattr(users_module, "_admin_exists", admin_appears_after_the_first_checks)
    assert await users_module.UserService(db, settings).ensure_admin("admin", None) is None


async def test_ensure_admin_with_a_given_password_and_a_taken_name(db: Database, settings: Settings) -> None:
    from dockyard.accounts.users import UserService

    users = UserService(db, settings)
    await make_user(db, "admin")  # a non-administrator took the name
    with pytest.raises(Conflict):
        await users.ensure_admin("admin", "given-password")
    assert await users.ensure_admin("boss", "given-password") is None
    assert (await Authenticator(db, settings).login("boss", "given-password")).is_admin
