"""Organization invites in a real browser, with a real SMTP server (aiosmtpd, run by the test): an owner invites a
user by name into a team from the organization's settings page; the invitation link arrives by mail; the invitee
opens it, signs in from it, accepts — and is a member of the organization and the team. Another user cannot
accept an invitation meant for someone else; an invitation by e-mail address is declined and its link is dead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.smtp_sink import SmtpSink, smtp_sink
from tests.web.conftest import shot
from tests.web.pages import assert_inert, sign_in, watch_scripts


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    with smtp_sink() as running:
        yield running


@pytest.fixture(scope="module")
def secure_server_env(sink: SmtpSink) -> dict[str, str]:
    return {**SIGN_IN_OFTEN, **sink.settings()}


def _members(admin: HubAdmin, org: str) -> dict[str, str]:
    response = admin.client.get(f"/api/v2/orgs/{org}/members")
    assert response.status_code == 200, response.text
    return {m["username"]: m["role"] for m in response.json()["results"]}


def test_invite_from_the_settings_page_and_accept_from_the_mailed_link(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin, sink: SmtpSink
) -> None:
    owner, owner_pw = admin.user("boss")
    invitee, invitee_pw = admin.user("joiner")
    intruder, intruder_pw = admin.user("intruder")
    org = admin.org(owner)
    team = admin.team(org, [], {})

    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, owner, owner_pw)
    page.goto(f"{secure_server.url}/orgs/{org}/settings")
    page.fill("#invitees", f"{invitee}, no-such-user-zz")
    page.select_option("#invite-role", "editor")
    page.select_option("#invite-team", team)
    page.click("[data-testid=invite-form] button[type=submit]")
    page.wait_for_selector("[data-testid=form-error]")
    assert "no-such-user-zz" in page.inner_text("[data-testid=form-error]")  # who was not invited, and why
    row = page.locator(f"[data-testid=invite-{invitee}]")
    assert row.count() == 1
    assert "editor" in row.inner_text()
    assert team in row.inner_text()
    assert page.locator(".invite-link").count() == 0  # mailed: the owner is not given the link
    assert_inert(page, secure_server, "org settings with invites")
    shot(page, "org-settings-invites", phone=True)

    mail = sink.wait_for_mail(f"{invitee}@example.test")
    assert org in mail.body
    assert mail.link.startswith(f"{secure_server.url}/invites/")

    # Someone else who got hold of the link is refused: the invitation is for the user it names.
    other = browser_context_factory().new_page()
    sign_in(other, secure_server, intruder, intruder_pw)
    other.goto(mail.link)
    other.click("[data-testid=invite-answer] button[value=accept]")
    other.wait_for_selector("[data-testid=form-error]")
    assert "another user" in other.inner_text("[data-testid=form-error]")
    assert intruder not in _members(admin, org)

    # The invitee opens the link, signs in from it, comes back to it and accepts.
    guest = browser_context_factory().new_page()
    guest.goto(mail.link)
    assert org in guest.inner_text("[data-testid=invitation]")
    assert guest.inner_text("[data-testid=invite-role]") == "editor"
    shot(guest, "invite-signed-out")
    guest.click("[data-testid=invite-sign-in] a")
    guest.fill("#username", invitee)
    guest.fill("#password", invitee_pw)
    guest.click("form.stack button[type=submit]")
    guest.wait_for_selector("[data-testid=invite-answer]")
    assert guest.url == mail.link
    shot(guest, "invite-signed-in", phone=True)
    guest.click("[data-testid=invite-answer] button[value=accept]")
    guest.wait_for_url(f"{secure_server.url}/orgs/{org}")
    assert _members(admin, org)[invitee] == "Editor"
    team_members = admin.client.get(f"/api/v2/orgs/{org}/groups/{team}/members").json()["results"]
    assert [m["username"] for m in team_members] == [invitee]

    # Used up: the link's page is gone, and the owner's list is empty.
    assert guest.goto(mail.link).status == 404
    page.goto(f"{secure_server.url}/orgs/{org}/settings")
    assert page.locator(f"[data-testid=invite-{invitee}]").count() == 0
    assert dialogs == []


def test_decline_an_invitation_by_email(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin, sink: SmtpSink
) -> None:
    owner, owner_pw = admin.user("boss")
    someone, someone_pw = admin.user("someone")
    org = admin.org(owner)
    address = f"{someone}.private@example.test"

    page = browser_context_factory().new_page()
    sign_in(page, secure_server, owner, owner_pw)
    page.goto(f"{secure_server.url}/orgs/{org}/settings")
    page.fill("#invitees", address)
    page.click("[data-testid=invite-form] button[type=submit]")
    page.wait_for_selector("[data-testid=saved]")
    assert page.locator(f"[data-testid='invite-{address}']").count() == 1

    mail = sink.wait_for_mail(address)
    guest = browser_context_factory().new_page()
    sign_in(guest, secure_server, someone, someone_pw)
    guest.goto(mail.link)
    guest.click("[data-testid=invite-answer] button[value=decline]")
    guest.wait_for_url(f"{secure_server.url}/")
    assert someone not in _members(admin, org)
    assert guest.goto(mail.link).status == 404
    page.goto(f"{secure_server.url}/orgs/{org}/settings")
    assert page.locator(f"[data-testid='invite-{address}']").count() == 0
