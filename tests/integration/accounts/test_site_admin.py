"""The site administration's services against a real database (SQLite, or PostgreSQL in the scale-out run): user
search, making and unmaking administrators, self sign-up, and ``SiteAdminService`` — storage used, the job queue by
kind and state with recent failures, a dead job retried, garbage collections queued and their history — each
refused to anyone but site administrators, and audited where it changes something."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from dockyard.core.paging import PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, Invalid, NotFound
from dockyard.jobs.periodic import try_lease
from dockyard.jobs.queue import DEAD, QUEUED, enqueue
from dockyard.models import Blob, GCRun, Job, MaintenanceLease, NamespaceUsage
from dockyard.models.base import utcnow
from dockyard.registry.gc import GCReport
from dockyard.registry.gc_runs import GC_LEASE, MANUAL, CollectionBusy, collect, recent_gc_runs, record_gc_run
from dockyard.repos.site_admin import SiteAdminService
from dockyard.settings import Settings
from tests.support.accounts import Services, audit, make_user, services
from tests.support.hub_services import hub_env


async def test_users_are_searched_by_name_or_email_any_case(db: Database, svc: Services) -> None:
    admin = await make_user(db, "root", admin=True)
    for name in ("alpha", "beta", "gamma"):
        await make_user(db, name)
    found = await svc.users.list_users(PageRequest(1, 10), actor=admin, query="ALP")
    assert [u.name for u in found.items] == ["alpha"]
    by_mail = await svc.users.list_users(PageRequest(1, 10), actor=admin, query="@example.com")
    assert by_mail.count == 4
    wild = await svc.users.list_users(PageRequest(1, 10), actor=admin, query="%")  # a literal, not a wildcard
    assert wild.count == 0
    with pytest.raises(Denied):
        await svc.users.list_users(PageRequest(1, 10), actor=await make_user(db, "plain"), query="a")


async def test_site_administration_is_granted_and_removed_but_never_the_last(db: Database, svc: Services) -> None:
    root = await make_user(db, "root", admin=True)
    alice = await make_user(db, "alice")
    with pytest.raises(Denied):
        await svc.users.set_admin("alice", True, actor=alice)
    made = await svc.users.set_admin("alice", True, actor=root, source_ip="10.0.0.9")
    assert made.is_admin
    with pytest.raises(Conflict):
        await svc.users.set_admin("root", False, actor=root)  # not one's own
    unmade = await svc.users.set_admin("alice", False, actor=root)
    assert not unmade.is_admin
    actions = [e["action"] for e in await audit(db, "alice")]
    assert actions[-2:] == ["account.admin_grant", "account.admin_revoke"]
    alice_admin = await make_user(db, "carol", admin=True)
    await svc.users.set_disabled("carol", True, actor=root)
    with pytest.raises(Conflict):  # root is the last enabled administrator
        await svc.users.set_admin("root", False, actor=alice_admin)


async def test_sign_up_needs_the_setting_and_keeps_the_password_policy(db: Database, tmp_path: Path) -> None:
    closed = services(db, Settings(data_dir=tmp_path))
    with pytest.raises(Denied):
        await closed.users.sign_up("newbie", "n@example.com", "a-long-password", source_ip="10.0.0.2")
    open_ = services(db, Settings(data_dir=tmp_path, allow_signup=True))
    with pytest.raises(Invalid):
        await open_.users.sign_up("newbie", "n@example.com", "short")
    with pytest.raises(Invalid):
        await open_.users.sign_up("newbie", "", "a-long-password")
    made = await open_.users.sign_up("newbie", "n@example.com", "a-long-password", source_ip="10.0.0.2")
    assert (made.name, made.is_admin) == ("newbie", False)
    with pytest.raises(Conflict):
        await open_.users.sign_up("newbie", "m@example.com", "a-long-password")
    entry = (await audit(db, "newbie"))[-1]
    assert (entry["action"], entry["actor"], entry["data"]["via"]) == ("account.create", "newbie", "signup")


async def test_storage_jobs_and_collections_for_administrators_only(db: Database) -> None:
    root = await make_user(db, "root", admin=True)
    plain = await make_user(db, "plain")
    woken: list[bool] = []
    site = SiteAdminService(db, lambda: woken.append(True))
    now = utcnow()
    async with db.write() as conn:
        await conn.execute(insert(Blob), [{"digest": f"sha256:{i:064x}", "size": 100 * (i + 1)} for i in range(3)])
        await conn.execute(
            insert(NamespaceUsage),
            [
                {"namespace": "small", "storage_bytes": 10, "storage_limit": None},
                {"namespace": "big", "storage_bytes": 500, "storage_limit": 1000},
                {"namespace": "empty", "storage_bytes": 0, "storage_limit": None},
            ],
        )
        await enqueue(conn, "webhooks.deliver", {"delivery_id": 1})
        dead = await enqueue(conn, "webhooks.deliver", {"delivery_id": 2}, dedupe_key="webhooks.deliver:2")
        await conn.execute(
            update(Job)
            .where(Job.id == dead)
            .values(state=DEAD, attempts=3, max_attempts=3, finished_at=now, last_error="boom", expires_at=now)
        )
    for call in (site.storage(plain), site.jobs(plain), site.gc(plain), site.start_gc(plain, dry_run=True)):
        with pytest.raises(Denied):
            await call
    with pytest.raises(Denied):
        await site.retry_job(plain, int(dead or 0))

    storage = await site.storage(root)
    assert (storage.total_bytes, storage.blob_count) == (600, 3)
    assert [(n.namespace, n.storage_bytes, n.storage_limit) for n in storage.namespaces] == [
        ("big", 500, 1000),
        ("small", 10, None),
    ]

    jobs = await site.jobs(root)
    counts = {(c.kind, c.state): c.jobs for c in jobs.counts}
    assert counts == {("webhooks.deliver", QUEUED): 1, ("webhooks.deliver", DEAD): 1}
    assert [(f.id, f.state, f.last_error) for f in jobs.failures] == [(dead, DEAD, "boom")]
    assert dead is not None
    with pytest.raises(NotFound):
        await site.retry_job(root, dead + 100)
    assert await site.retry_job(root, dead, source_ip="10.0.0.3") == "webhooks.deliver"
    assert woken == [True]
    async with db.read() as conn:
        row = (await conn.execute(select(Job).where(Job.id == dead))).one()
    assert (row.state, row.max_attempts, row.expires_at, row.finished_at) == (QUEUED, 4, None, None)
    with pytest.raises(NotFound):  # no longer dead
        await site.retry_job(root, dead)
    assert [e["action"] for e in await audit(db, "")] == ["job.retry"]

    first = await site.start_gc(root, dry_run=True, source_ip="10.0.0.4")
    assert first is not None
    assert await site.start_gc(root, dry_run=False) is None  # one queued at a time
    report = GCReport(dry_run=False, blobs=[("sha256:" + "f" * 64, 4096)], blob_links=2)
    await record_gc_run(db, report, started_at=now - timedelta(seconds=3), trigger=MANUAL, actor="root")
    state = await site.gc(root)
    assert state.pending == 1
    assert [(r.dry_run, r.blobs, r.blob_links, r.bytes_freed, r.actor) for r in state.runs] == [
        (False, 1, 2, 4096, "root")
    ]
    async with db.read() as conn:
        assert (await conn.execute(select(GCRun.trigger))).scalar_one() == MANUAL
    assert [e["action"] for e in await audit(db, "")] == ["job.retry", "gc.start"]


async def test_a_collection_from_the_page_takes_the_gc_lease_and_a_dry_run_keeps_the_schedule(
    tmp_path: Path,
) -> None:
    async with hub_env(tmp_path, gc_grace_seconds=0) as env:
        db = env.ctx.db

        async def finished_at() -> object:
            async with db.read() as conn:
                return (
                    await conn.execute(
                        select(MaintenanceLease.last_finished_at).where(MaintenanceLease.name == GC_LEASE)
                    )
                ).scalar_one_or_none()

        dry = await collect(env.ctx, dry_run=True, trigger=MANUAL, actor="root")
        assert dry.dry_run
        assert await finished_at() is None  # the scheduled collection is not put off by a dry run
        await collect(env.ctx, dry_run=False, trigger=MANUAL, actor="root")
        assert await finished_at() is not None
        assert [(r.dry_run, r.trigger) for r in await recent_gc_runs(db)] == [(False, MANUAL), (True, MANUAL)]
        assert await try_lease(db, GC_LEASE, timedelta(minutes=5))  # another holder now…
        async with db.write() as conn:  # …that is not this process
            await conn.execute(update(MaintenanceLease).values(holder="elsewhere"))
        with pytest.raises(CollectionBusy):
            await collect(env.ctx, dry_run=True, trigger=MANUAL)


async def test_the_scheduled_collection_is_in_the_history(tmp_path: Path) -> None:
    from dockyard.app import periodic_jobs

    async with hub_env(tmp_path) as env:
        reports: list[GCReport] = []
        jobs = periodic_jobs(env.ctx.db, env.ctx.store, env.ctx.settings, on_gc=reports.append)
        await next(job for job in jobs if job.name == "gc").run()
        assert len(reports) == 1
        assert [(r.trigger, r.dry_run, r.actor) for r in await recent_gc_runs(env.ctx.db)] == [
            ("schedule", False, None)
        ]
