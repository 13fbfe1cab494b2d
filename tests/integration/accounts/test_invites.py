"""InviteService against a migrated database (SQLite, and PostgreSQL in the scale-out run): expiry, the link shown
to owners only without an SMTP server, the mail job queued in the invite's transaction, cascades, and the
``invites.send`` handler against a real SMTP server (aiosmtpd) — delivered, skipped once the invite is gone,
retried when the server cannot be reached."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from dockyard.accounts.invites import (
    ALREADY_INVITED,
    INVITED,
    SEND_JOB,
    InviteService,
)
from dockyard.accounts.tasks import send_invite
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, NotFound
from dockyard.jobs.handlers import JobContext, Retry
from dockyard.jobs.registry import JobEnvironment
from dockyard.models import Job, OrgInvite, OrgMember
from dockyard.models.base import utcnow
from dockyard.settings import Settings
from tests.support.accounts import Services, audit, make_org, make_user, services
from tests.support.smtp_sink import SmtpSink, smtp_sink

BASE = "https://hub.example"
SECRET = "s" * 32


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, secret_key=SECRET)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


def _mailing(settings: Settings, sink: SmtpSink) -> Settings:
    return replace_settings(settings, smtp_host="127.0.0.1", smtp_port=sink.port, smtp_from="hub@example")


def replace_settings(settings: Settings, **values: object) -> Settings:
    return settings.model_copy(update=values)


async def _jobs(db: Database) -> list[dict[str, object]]:
    async with db.read() as conn:
        rows = (await conn.execute(select(Job.kind, Job.payload).order_by(Job.id))).all()
    return [{"kind": kind, **json.loads(payload)} for kind, payload in rows]


async def test_expired_invites_cannot_be_accepted_and_are_replaced(db: Database, settings: Settings) -> None:
    owner, guest = await make_user(db, "owner"), await make_user(db, "guest")
    await make_org(db, "acme", owners=[owner])
    invites = InviteService(db, settings)
    [made] = await invites.invite("acme", ["Guest@Example.com"], base_url=BASE, actor=owner, source_ip="10.0.0.1")
    assert made.status == INVITED
    assert made.invite is not None
    assert made.invite.invitee == "guest@example.com"
    assert made.invite.link is not None  # no SMTP server: the owner is given the link
    assert made.invite.link.startswith(f"{BASE}/invites/dy_inv_")
    token = made.invite.link.rsplit("/", 1)[1]
    assert made.invite.expires_at - made.invite.created_at == timedelta(days=settings.invite_expiry_days)
    assert await _jobs(db) == []  # nothing to mail

    async with db.write() as conn:
        await conn.execute(update(OrgInvite).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await invites.lookup(token)).expired
    with pytest.raises(Conflict):
        await invites.accept(token, actor=guest)
    [listed] = await invites.list("acme", base_url=BASE, actor=owner)
    assert listed.expired

    # Inviting again replaces the expired invite: a new id and a new link; the old link is dead.
    [again] = await invites.invite("acme", ["guest@example.com"], base_url=BASE, actor=owner)
    assert again.status == INVITED
    assert again.invite is not None
    assert again.invite.id != made.invite.id
    with pytest.raises(NotFound):
        await invites.lookup(token)
    new_token = str(again.invite.link).rsplit("/", 1)[1]
    [still] = await invites.invite("acme", ["guest@example.com"], base_url=BASE, actor=owner)
    assert (still.status, still.invite and still.invite.id) == (ALREADY_INVITED, again.invite.id)

    joined = await invites.accept(new_token, actor=guest, source_ip="10.0.0.2")
    assert (joined.org, joined.role) == ("acme", "member")
    async with db.read() as conn:
        roles = (await conn.execute(select(OrgMember.role).where(OrgMember.user_id == guest.account_id))).all()
    assert roles == [("member",)]
    actions = [entry["action"] for entry in await audit(db, "acme")]
    assert actions.count("org.invite.create") == 2
    assert actions[-2:] == ["org.member.add", "org.invite.accept"]


async def test_mail_is_queued_with_the_invite_and_the_link_is_not_shown(
    db: Database, settings: Settings, sink: SmtpSink
) -> None:
    owner, member = await make_user(db, "owner"), await make_user(db, "member")
    await make_org(db, "acme", owners=[owner], members=[member])
    woken: list[int] = []
    invites = InviteService(db, _mailing(settings, sink), wake=lambda: woken.append(1))
    [made] = await invites.invite("acme", ["a@example.com"], role="owner", base_url=BASE, actor=owner)
    assert made.invite is not None
    assert made.invite.link is None
    assert await _jobs(db) == [{"kind": SEND_JOB, "invite_id": made.invite.id, "base_url": BASE}]
    assert woken == [1]
    # A dry run and a refused caller queue nothing.
    await invites.invite("acme", ["b@example.com"], dry_run=True, base_url=BASE, actor=owner)
    with pytest.raises(Denied):
        await invites.invite("acme", ["c@example.com"], base_url=BASE, actor=member)
    assert len(await _jobs(db)) == 1
    with pytest.raises(NotFound):  # whoever may not manage the invite cannot tell it from none
        await invites.delete(made.invite.id, actor=member)
    await invites.resend(made.invite.id, base_url=BASE, actor=owner)
    assert len(await _jobs(db)) == 2
    both = await invites.invite("acme", ["d@example.com", "e@example.com"], base_url=BASE, actor=owner)
    queued = [job["invite_id"] for job in await _jobs(db)][2:]
    assert queued == [result.invite.id for result in both if result.invite is not None]
    assert len(queued) == 2


async def test_an_invite_goes_with_its_team_and_its_organization(db: Database, settings: Settings) -> None:
    owner = await make_user(db, "owner")
    await make_org(db, "acme", owners=[owner])
    svc: Services = services(db, settings)
    await svc.teams.create_team("acme", "devs", actor=owner)
    invites = InviteService(db, settings)
    await invites.invite("acme", ["x@example.com"], team="devs", base_url=BASE, actor=owner)
    await invites.invite("acme", ["y@example.com"], base_url=BASE, actor=owner)
    await svc.teams.delete_team("acme", "devs", actor=owner)
    assert [i.invitee for i in await invites.list("acme", base_url=BASE, actor=owner)] == ["y@example.com"]
    await svc.orgs.delete_org("acme", actor=owner)
    async with db.read() as conn:
        assert (await conn.execute(select(OrgInvite.id))).all() == []


def _job(payload: dict[str, object]) -> JobContext:
    async def renew() -> bool:
        return True

    return JobContext(1, SEND_JOB, payload, 1, 10, None, renew)


async def test_the_send_job_mails_skips_and_retries(db: Database, settings: Settings, sink: SmtpSink) -> None:
    owner = await make_user(db, "owner")
    invitee = await make_user(db, "invitee")
    await make_org(db, "acme", owners=[owner])
    mailing = _mailing(settings, sink)
    invites = InviteService(db, mailing)
    [by_name] = await invites.invite("acme", ["invitee"], role="editor", base_url=BASE, actor=owner)
    assert by_name.invite is not None
    async with AsyncExitStack() as resources:
        env = JobEnvironment(db, mailing, store=None, resources=resources)  # type: ignore[arg-type]
        handle = send_invite(env)
        await handle(_job({"invite_id": by_name.invite.id, "base_url": BASE}))
        mail = sink.wait_for_mail("invitee@example.com")
        assert mail.sender == "hub@example"
        assert "editor" in mail.body
        assert mail.link.startswith(f"{BASE}/invites/")
        assert (await invites.lookup(mail.token)).invitee == invitee.name
        [listed] = await invites.list("acme", base_url=BASE, actor=owner)
        assert listed.sent_at is not None

        await invites.delete(by_name.invite.id, actor=owner)
        await handle(_job({"invite_id": by_name.invite.id, "base_url": BASE}))  # gone: nothing is sent
        assert len(sink.mails) == 1

    [by_mail] = await invites.invite("acme", ["z@example.com"], base_url=BASE, actor=owner)
    assert by_mail.invite is not None
    unreachable = replace_settings(mailing, smtp_port=1, smtp_timeout_seconds=5.0)
    async with AsyncExitStack() as resources:
        env = JobEnvironment(db, unreachable, store=None, resources=resources)  # type: ignore[arg-type]
        with pytest.raises(Retry):
            await send_invite(env)(_job({"invite_id": by_mail.invite.id, "base_url": BASE}))
    assert sink.to("z@example.com") == []


def test_settings_default_to_no_mail() -> None:
    defaults = Settings()
    assert (defaults.smtp_host, defaults.smtp_starttls, defaults.invite_expiry_days) == ("", False, 7)
