"""Organization invites through the Hub API with a real SMTP server (aiosmtpd, run by the test): an owner invites
by e-mail address and by user name (into a team), the links arrive by mail from the background job, and the
invitees accept or decline with the link's token; only owners manage invites; resend mails the link again."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.checks import unique
from tests.support.hub_accounts import SIGN_IN_OFTEN, Accounts, ok
from tests.support.smtp_sink import SmtpSink, smtp_sink


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture(scope="module")
def secure_server_env(sink: SmtpSink) -> dict[str, str]:
    return {**SIGN_IN_OFTEN, **sink.settings()}


def _bulk(client: httpx.Client, org: str, *invitees: str, **extra: Any) -> list[dict[str, Any]]:
    body = {"org": org, "invitees": list(invitees), **extra}
    results: list[dict[str, Any]] = ok(client.post("/api/v2/invites/bulk", json=body), 202)["invitees"]
    return results


def _members(hub: Accounts, owner: str, org: str) -> dict[str, str]:
    page = ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/members"))
    return {m["username"]: m["role"] for m in page["results"]}


def test_invite_by_email_is_mailed_and_accepted_through_the_link(hub: Accounts, sink: SmtpSink) -> None:
    owner = hub.user("owner")
    org = hub.org(owner)
    team = unique("team")
    ok(hub.as_user(owner).post(f"/api/v2/orgs/{org}/groups", json={"name": team}), 201)
    address = f"{unique('new')}@example.com"

    [result] = _bulk(hub.as_user(owner), org, address.upper(), team=team, role="Editor")
    assert result["status"] == "invited"
    invite = result["invite"]
    assert (invite["invitee"], invite["org"], invite["team"], invite["role"]) == (address, org, team, "editor")
    assert invite["inviter_username"] == owner
    assert "link" not in invite  # the link goes to the invitee by mail, not to the owner

    mail = sink.wait_for_mail(address)
    assert mail.recipients == (address,)
    assert mail.message["From"] == "hub@dockyard.test"
    assert org in mail.message["Subject"]
    assert mail.link.startswith(hub.server.url + "/invites/dy_inv_")
    listed = ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/invites"))["data"]
    assert [(i["id"], i["invitee"], i["is_expired"]) for i in listed] == [(invite["id"], address, False)]
    assert all("link" not in i or i["link"] is None for i in listed)

    # The link works for whoever signs in with it (it was sent to that address): here a user of another e-mail.
    newcomer = hub.user("newcomer")
    page = hub.anon.get(mail.link)
    assert page.status_code == 200
    assert org in page.text
    accepted = ok(hub.as_user(newcomer).post("/api/v2/invites/accept", json={"token": mail.token}))
    assert accepted == {"org": org, "team": team, "role": "editor"}
    assert _members(hub, owner, org)[newcomer] == "Editor"
    team_members = ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/groups/{team}/members"))["results"]
    assert [m["username"] for m in team_members] == [newcomer]
    assert ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/invites"))["data"] == []
    # Used up: the link answers 404 now, for accepting and for the page.
    again = hub.as_user(newcomer).post("/api/v2/invites/accept", json={"token": mail.token})
    assert again.status_code == 404
    assert hub.anon.get(mail.link).status_code == 404

    actions = [e["action"] for e in ok(hub.as_user(owner).get(f"/api/v2/auditlogs/{org}"))["logs"]]
    assert {"org.invite.create", "org.invite.accept", "org.member.add", "team.member.add"} <= set(actions)


def test_invite_by_user_name_is_for_that_user_alone(hub: Accounts, sink: SmtpSink) -> None:
    owner, invitee, other = hub.user("owner"), hub.user("invitee"), hub.user("other")
    org = hub.org(owner)
    [result] = _bulk(hub.as_user(owner), org, invitee)
    assert result["status"] == "invited"
    mail = sink.wait_for_mail(f"{invitee}@example.com")  # the invited user's address

    refused = hub.as_user(other).post("/api/v2/invites/accept", json={"token": mail.token})
    assert refused.status_code == 403
    assert hub.as_user(other).post("/api/v2/invites/decline", json={"token": mail.token}).status_code == 403
    # A personal access token is not the account's own sign-in.
    pat = hub.pat(invitee, "repo:admin")["token"]
    with_pat = hub.client(bearer=pat).post("/api/v2/invites/accept", json={"token": mail.token})
    assert with_pat.status_code == 403
    assert hub.anon.post("/api/v2/invites/accept", json={"token": mail.token}).status_code == 401
    assert invitee not in _members(hub, owner, org)

    assert hub.as_user(invitee).post("/api/v2/invites/decline", json={"token": mail.token}).status_code == 204
    assert hub.as_user(invitee).post("/api/v2/invites/accept", json={"token": mail.token}).status_code == 404
    assert invitee not in _members(hub, owner, org)
    actions = [e["action"] for e in ok(hub.as_user(owner).get(f"/api/v2/auditlogs/{org}"))["logs"]]
    assert "org.invite.decline" in actions


def test_bulk_statuses_and_dry_run(hub: Accounts, sink: SmtpSink) -> None:
    owner, member, newcomer = hub.user("owner"), hub.user("member"), hub.user("newcomer")
    org = hub.org(owner, member)
    address = f"{unique('dry')}@example.com"
    dry = _bulk(hub.as_user(owner), org, address, newcomer, dry_run=True)
    assert [(r["invitee"], r["status"]) for r in dry] == [(address, "invited"), (newcomer, "invited")]
    assert ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/invites"))["data"] == []

    results = _bulk(hub.as_user(owner), org, address, member, "no-such-user-x", "not an address@", newcomer, address)
    assert [(r["invitee"], r["status"]) for r in results] == [
        (address, "invited"),
        (member, "existing_org_member"),
        ("no-such-user-x", "invalid_email_or_docker_id"),
        ("not an address@", "invalid_email_or_docker_id"),
        (newcomer, "invited"),
    ]
    # Each invitee of one request gets their mail, and each invite its audit entry.
    assert sink.wait_for_mail(address).token != sink.wait_for_mail(f"{newcomer}@example.com").token
    actions = [e["action"] for e in ok(hub.as_user(owner).get(f"/api/v2/auditlogs/{org}"))["logs"]]
    assert actions.count("org.invite.create") == 2
    again = _bulk(hub.as_user(owner), org, address)
    assert again[0]["status"] == "already_invited"
    assert again[0]["invite"]["id"] == results[0]["invite"]["id"]
    listed = ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/invites"))["data"]
    assert sorted(i["invitee"] for i in listed) == sorted([address, newcomer])

    exported = hub.as_user(owner).get(f"/api/v2/orgs/{org}/members/export")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    invitees = {(r["Username"], r["Email"], r["Type"], r["Teams"]) for r in rows if r["Type"] == "Invitee"}
    assert invitees == {("", address, "Invitee", ""), (newcomer, "", "Invitee", "")}
    assert {r["Username"] for r in rows if r["Type"] == "User"} == {owner, member}

    bad_role = hub.as_user(owner).post("/api/v2/invites/bulk", json={"org": org, "invitees": [address], "role": "boss"})
    assert bad_role.status_code == 400
    no_team = hub.as_user(owner).post("/api/v2/invites/bulk", json={"org": org, "invitees": [address], "team": "nope"})
    assert no_team.status_code == 404


def test_only_owners_manage_invites(hub: Accounts, sink: SmtpSink) -> None:
    owner, member, stranger = hub.user("owner"), hub.user("member"), hub.user("stranger")
    org = hub.org(owner, member)
    address = f"{unique('x')}@example.com"
    [result] = _bulk(hub.as_user(owner), org, address)
    invite_id = result["invite"]["id"]
    for who in (member, stranger):
        client = hub.as_user(who)
        assert client.get(f"/api/v2/orgs/{org}/invites").status_code == 403
        assert client.post("/api/v2/invites/bulk", json={"org": org, "invitees": ["a@b.example"]}).status_code == 403
        # An invite addressed by its id: whoever may not manage it cannot tell it from none.
        assert client.patch(f"/api/v2/invites/{invite_id}/resend").status_code == 404
        assert client.delete(f"/api/v2/invites/{invite_id}").status_code == 404
    assert hub.anon.get(f"/api/v2/orgs/{org}/invites").status_code == 401
    assert hub.anon.delete(f"/api/v2/invites/{invite_id}").status_code == 401
    assert hub.as_user(owner).get("/api/v2/orgs/no-such-org-x/invites").status_code == 404
    assert len(ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/invites"))["data"]) == 1

    assert hub.as_user(owner).delete(f"/api/v2/invites/{invite_id}").status_code == 204
    assert ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/invites"))["data"] == []
    assert hub.as_user(owner).delete(f"/api/v2/invites/{invite_id}").status_code == 404
    # The cancelled invite's link is dead.
    mail = sink.wait_for_mail(address)
    assert hub.as_user(member).post("/api/v2/invites/accept", json={"token": mail.token}).status_code == 404
    actions = [e["action"] for e in ok(hub.as_user(owner).get(f"/api/v2/auditlogs/{org}"))["logs"]]
    assert "org.invite.delete" in actions


def test_resend_mails_the_same_link_again_and_renews_the_expiry(hub: Accounts, sink: SmtpSink) -> None:
    owner = hub.user("owner")
    org = hub.org(owner)
    address = f"{unique('again')}@example.com"
    [result] = _bulk(hub.as_user(owner), org, address)
    first = sink.wait_for_mail(address)
    assert hub.as_user(owner).patch(f"/api/v2/invites/{result['invite']['id']}/resend").status_code == 204
    second = sink.wait_for_mail(address, count=2)
    assert second.token == first.token
    [listed] = ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/invites"))["data"]
    assert listed["expires_at"] >= result["invite"]["expires_at"]
    newcomer = hub.user("newcomer")
    ok(hub.as_user(newcomer).post("/api/v2/invites/accept", json={"token": second.token}))
    assert _members(hub, owner, org)[newcomer] == "Member"


def test_acceptance_is_in_the_openapi_document(hub: Accounts) -> None:
    paths = ok(hub.anon.get("/api/v2/openapi.json"))["paths"]
    assert "post" in paths["/api/v2/invites/accept"]
    assert "post" in paths["/api/v2/invites/decline"]
    assert "post" in paths["/api/v2/invites/bulk"]
