"""An organization's robots and the audit logs in a real browser: its owner creates a robot with a permission on
the Robots page, the secret is shown once and really pulls over ``/v2`` (and may not push), deleting it on the page
ends it; the organization's audit log shows what happened, filtered by action and actor and a page at a time; the
site administrator's log shows every namespace. Who may not see a page gets a 404, who sees but may not act a 403.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.app_server import AppServer
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.oci import OCI_MANIFEST, push_image
from tests.web.conftest import shot
from tests.web.pages import XSS, assert_inert, csrf, sign_in, signed_in_client, watch_scripts

AUDIT_PAGE = 25  # http/web/audit.py's page size


def test_a_robot_made_on_the_page_pulls_once_shown_and_is_deleted(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, owner_pw = admin.user("boss")
    org = admin.org(owner)
    with httpx.Client(base_url=secure_server.url, auth=(owner, owner_pw), timeout=30) as v2:
        push_image(v2, f"{org}/app", "v1")
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, owner, owner_pw)
    page.goto(f"{secure_server.url}/orgs/{org}")
    page.click("[data-testid=org-robots]")
    page.wait_for_selector("[data-testid=robots]")

    page.fill("#robot-name", "ci")
    page.fill("#robot-description", XSS)
    page.fill("#robot-permissions", "app superpowers")  # refused with the reason, the fields kept
    page.click("[data-testid=robot-form] button[type=submit]")
    assert page.locator("[data-testid=form-error]").count() == 1
    assert page.input_value("#robot-name") == "ci"
    page.fill("#robot-permissions", "app read")
    page.click("[data-testid=robot-form] button[type=submit]")
    page.wait_for_selector("[data-testid=new-robot]")
    name = page.inner_text("[data-testid=new-robot-name]")
    secret = page.inner_text("[data-testid=new-robot] code:not([data-testid])")
    assert name == f"{org}+ci"
    assert secret.startswith("dy_rbt_")
    row = page.inner_text("[data-testid=robot-ci]")
    assert f"{org}/app" in row
    assert "read" in row
    assert_inert(page, secure_server, "robots")
    shot(page, "robots-created", phone=True)

    with httpx.Client(base_url=secure_server.url, auth=(name, secret), timeout=30) as robot:
        pulled = robot.get(f"/v2/{org}/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert pulled.status_code == 200, pulled.text
        pushed = robot.post(f"/v2/{org}/app/blobs/uploads/")
        assert pushed.status_code in (401, 403), pushed.text  # read only
        page.goto(f"{secure_server.url}/orgs/{org}/robots")
        assert secret not in page.content()  # shown once
        # Edited on the page: write access from now on, and an expiry date.
        page.click("[data-testid=edit-ci] summary")
        page.fill("#perm-ci", "app write")
        page.fill("#exp-ci", "2099-01-31")
        page.click("[data-testid=edit-ci] button[type=submit]")
        page.wait_for_selector("[data-testid=saved]")
        row = page.inner_text("[data-testid=robot-ci]")
        assert "write" in row
        assert "2099-01-31" in row
        assert robot.post(f"/v2/{org}/app/blobs/uploads/").status_code == 202
        # A date already past is refused with the reason; nothing changes.
        page.click("[data-testid=edit-ci] summary")
        page.fill("#exp-ci", "2001-01-01")
        page.click("[data-testid=edit-ci] button[type=submit]")
        assert "in the future" in page.inner_text("[data-testid=form-error]")
        page.locator("[data-testid=robot-ci] button:has-text('Delete')").click()
        page.wait_for_selector("[data-testid=saved]")
        assert page.locator("[data-testid=robot-ci]").count() == 0
        gone = robot.get(f"/v2/{org}/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
        assert gone.status_code == 401, gone.text
    assert dialogs == []


def test_the_audit_log_pages_filter_page_and_keep_to_their_namespace(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, owner_pw = admin.user("keeper")
    org = admin.org(owner)
    elsewhere = admin.org(owner)
    for _ in range(AUDIT_PAGE + 2):
        admin.robot(org, {})  # robot.create by admin, in the organization's log
    admin.robot(elsewhere, {})
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, owner, owner_pw)
    # The owner makes one entry of their own on the robots page.
    page.goto(f"{secure_server.url}/orgs/{org}/robots")
    page.fill("#robot-name", "mine")
    page.click("[data-testid=robot-form] button[type=submit]")
    page.wait_for_selector("[data-testid=new-robot]")

    page.goto(f"{secure_server.url}/orgs/{org}")
    page.click("[data-testid=namespace-audit]")
    page.wait_for_selector("[data-testid=audit-entries]")
    assert page.locator("[data-testid=audit-entry]").count() == AUDIT_PAGE
    first_page = page.inner_text("[data-testid=audit-entries]")
    assert f"{org}+mine" in first_page  # newest first
    assert elsewhere not in first_page
    shot(page, "audit-namespace", phone=True)
    page.click("nav.pages >> text=Next")
    page.wait_for_selector("[data-testid=audit-entries]")
    assert "page=2" in page.url
    assert page.locator("[data-testid=audit-entry]").count() >= 3  # the org's creation and the rest of the robots

    page.goto(f"{secure_server.url}/namespaces/{org}/audit")
    page.select_option("#audit-action", "robot.create")
    page.fill("#audit-actor", owner)
    page.click("[data-testid=audit-filter] button[type=submit]")
    page.wait_for_selector("[data-testid=audit-entries]")
    assert page.locator("[data-testid=audit-entry]").count() == 1
    assert page.inner_text("[data-testid=audit-count]") == "1 entry"
    page.fill("#audit-actor", "admin")
    page.click("[data-testid=audit-filter] button[type=submit]")
    page.wait_for_selector("[data-testid=audit-entries]")
    assert page.inner_text("[data-testid=audit-count]") == f"{AUDIT_PAGE + 2} entries"
    assert page.locator("[data-testid=site-audit]").count() == 0  # not a site administrator

    as_admin = browser_context_factory().new_page()
    sign_in(as_admin, secure_server, "admin", secure_server.ADMIN_PASSWORD)
    as_admin.click("[data-testid=site-audit]")
    as_admin.wait_for_selector("[data-testid=audit-entries]")
    as_admin.select_option("#audit-action", "robot.create")
    as_admin.click("[data-testid=audit-filter] button[type=submit]")
    as_admin.wait_for_selector("[data-testid=audit-entries]")
    namespaces = set(as_admin.locator("[data-testid=audit-entry] td:nth-child(2)").all_inner_texts())
    assert elsewhere in namespaces  # the newest robot of all, on the first page
    as_admin.fill("#audit-namespace", elsewhere)
    as_admin.click("[data-testid=audit-filter] button[type=submit]")
    as_admin.wait_for_selector("[data-testid=audit-entries]")
    assert set(as_admin.locator("[data-testid=audit-entry] td:nth-child(2)").all_inner_texts()) == {elsewhere}
    assert as_admin.inner_text("[data-testid=audit-count]") == "1 entry"
    shot(as_admin, "audit-site")


def test_outsiders_are_refused_the_robots_and_the_logs(secure_server: AppServer, admin: HubAdmin) -> None:
    owner, _ = admin.user("chief")
    org = admin.org(owner)
    member, member_pw = admin.user("member")
    added = admin.client.post(f"/api/v2/orgs/{org}/members", json={"member": member})
    assert added.status_code == 201, added.text
    for who, password in ((member, member_pw), admin.user("stranger")):
        with signed_in_client(secure_server, who, password) as client:
            assert client.get(f"/orgs/{org}/robots").status_code == 403
            assert client.get(f"/namespaces/{org}/audit").status_code == 403
            assert client.get("/admin/audit").status_code == 404  # the site-admin area: nothing there for them
            token = csrf(client, "/settings/tokens")
            made = client.post(f"/orgs/{org}/robots", data={"csrf_token": token, "action": "create", "name": "evil"})
            assert made.status_code == 403
            assert client.get(f"/orgs/{unique('o')}/robots").status_code == 404
            assert client.get(f"/namespaces/{unique('o')}/audit").status_code == 404
            assert client.get(f"/namespaces/{who}/audit").status_code == 200  # their own namespace's log
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:
        for path in (f"/orgs/{org}/robots", f"/namespaces/{org}/audit", "/admin/audit"):
            assert anonymous.get(path).status_code == 303
        assert anonymous.post(f"/orgs/{org}/robots", data={"action": "create", "name": "x"}).status_code in (401, 403)
