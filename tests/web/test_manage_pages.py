"""Organizations, teams, repositories and who may use them, managed in a real browser: a user creates an
organization on its page, a team in it, puts a second user in the team and grants the team write on a repository —
then that user really pushes there; creates a private repository of their own on the new-repository page and
gives the second user read on its Access tab — then that user really sees it. Mistakes come back on the page with
the service's message; an outsider is refused the organization's settings (403, as the API), a form without its
CSRF token is refused."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.app_server import AppServer
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.oci import push_image
from tests.web.conftest import shot
from tests.web.pages import assert_inert, csrf, sign_in, signed_in_client, watch_scripts


def test_create_an_org_a_team_grant_it_and_the_member_pushes(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, owner_pw = admin.user("mgr")
    member, member_pw = admin.user("mate")
    org = unique("o")
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, owner, owner_pw)

    page.click("[data-testid=new-org]")
    page.fill("#name", "No Such Name!")
    page.click("[data-testid=org-form] button[type=submit]")
    assert "name" in page.inner_text("[data-testid=form-error]").lower()  # the service's refusal, on the page
    page.fill("#name", org)
    page.click("[data-testid=org-form] button[type=submit]")
    page.wait_for_selector("[data-testid=members]")
    assert page.url.endswith(f"/orgs/{org}/settings")
    assert page.locator(f"[data-testid=member-{owner}]").count() == 1
    shot(page, "org-new-settings")

    page.fill("#team-name", "builders")
    page.fill("#team-description", "they build")
    page.click("[data-testid=create-team] button[type=submit]")
    page.wait_for_selector("[data-testid=team-builders]")
    team = page.locator("[data-testid=team-builders]")
    team.locator("input[name=username]").fill(member)
    team.locator("button:has-text('Add to builders')").click()
    page.wait_for_selector("[data-testid=saved]")
    team = page.locator("[data-testid=team-builders]")
    team.locator("input[name=repository]").fill("app")
    team.locator("select[name=permission]").select_option("write")
    team.locator("button:has-text('Grant')").click()
    page.wait_for_selector("[data-testid=saved]")
    team_text = page.inner_text("[data-testid=team-builders]")
    assert member in team_text
    assert f"{org}/app" in team_text
    assert "write" in team_text
    assert_inert(page, secure_server, "org settings")
    shot(page, "org-settings-team", phone=True)

    # The grant is real: the team member pushes to the organization's repository.
    with httpx.Client(base_url=secure_server.url, auth=(member, member_pw), timeout=30) as client:
        push_image(client, f"{org}/app", "v1")
    # …and the organization page offers its owner the management page.
    page.goto(f"{secure_server.url}/orgs/{org}")
    assert page.locator("[data-testid=manage-org]").count() == 1
    assert dialogs == []


def test_new_private_repository_and_a_collaborator(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, owner_pw = admin.user("own")
    friend, friend_pw = admin.user("pal")
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, owner, owner_pw)
    page.click("[data-testid=new-repository]")
    page.select_option("#namespace", owner)
    page.fill("#name", "secret-app")
    page.fill("#description", "kept to ourselves")
    page.check("input[name=visibility][value=private]")
    shot(page, "repo-new")
    page.click("[data-testid=repo-form] button[type=submit]")
    page.wait_for_selector("[data-testid=repo-name]")
    assert page.url.endswith(f"/r/{owner}/secret-app")
    assert page.inner_text("[data-testid=visibility]") == "Private"
    assert page.inner_text("[data-testid=description]") == "kept to ourselves"

    with httpx.Client(base_url=secure_server.url, auth=(friend, friend_pw), timeout=30) as as_friend:
        assert as_friend.get(f"/api/v2/repositories/{owner}/secret-app").status_code == 404  # hidden from them
        page.click("nav.tabs >> text=Access")
        page.wait_for_selector("[data-testid=collaborators]")
        page.fill("#username", friend)
        page.select_option("#permission", "read")
        page.click("[data-testid=add-collaborator] button[type=submit]")
        page.wait_for_selector("[data-testid=saved]")
        assert friend in page.inner_text("[data-testid=collaborators]")
        shot(page, "repo-access")
        assert as_friend.get(f"/api/v2/repositories/{owner}/secret-app").status_code == 200  # now they see it
        page.fill("#username", "nobody-of-that-name")
        page.click("[data-testid=add-collaborator] button[type=submit]")
        assert page.locator("[data-testid=form-error]").count() == 1
        page.locator("[data-testid=collaborators] button:has-text('Remove')").click()
        page.wait_for_selector("[data-testid=saved]")
        assert as_friend.get(f"/api/v2/repositories/{owner}/secret-app").status_code == 404

    # The same name again is a conflict, said on the page.
    page.goto(f"{secure_server.url}/repositories/new")
    page.fill("#name", "secret-app")
    page.click("[data-testid=repo-form] button[type=submit]")
    assert page.locator("[data-testid=form-error]").count() == 1


def test_outsiders_and_forms_without_their_token_are_refused(secure_server: AppServer, admin: HubAdmin) -> None:
    owner, _ = admin.user("boss")
    outsider, outsider_pw = admin.user("out")
    org = admin.org(owner)
    with signed_in_client(secure_server, outsider, outsider_pw) as client:
        assert client.get(f"/orgs/{org}/settings").status_code == 403
        token = csrf(client, "/orgs/new")
        refused = client.post(
            f"/orgs/{org}/settings", data={"csrf_token": token, "action": "add_member", "username": outsider}
        )
        assert refused.status_code == 403
        assert client.get(f"/orgs/{unique('o')}/settings").status_code == 404
        assert client.post("/orgs/new", data={"name": unique("o")}).status_code == 403  # no CSRF token
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:
        assert anonymous.get("/repositories/new").status_code in (303, 401)
