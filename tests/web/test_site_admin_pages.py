"""The site-admin area and self sign-up in a real browser. The site administrator finds the area from the page
header: users (searched, a page at a time, created, disabled and enabled, made and unmade administrators, their
two-factor sign-in reset, deleted — each in the audit log), the storage used, the job queue with a dead job
retried, and garbage collection run as a job (a dry run, then a real one that frees the bytes of a deleted
repository). Users who are not site administrators find nothing there (404). With ``allow_signup`` on, a visitor
signs up from the sign-in page and is signed in; the password policy and a taken name are refused on the form."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from dockyard.models import Job
from dockyard.models.base import utcnow
from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.oci import push_image
from tests.web.conftest import shot
from tests.web.pages import XSS, assert_inert, csrf, sign_in, signed_in_client, watch_scripts

USERS_PAGE = 25  # http/web/admin.py's page size


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    # Self sign-up on; no scheduled collection and no grace, so that the page's collections are the only ones and
    # free what was just deleted.
    return {
        **SIGN_IN_OFTEN,
        "DOCKYARD_ALLOW_SIGNUP": "true",
        "DOCKYARD_GC_INTERVAL_SECONDS": "0",
        "DOCKYARD_GC_GRACE_SECONDS": "0",
    }


def _until(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def _act(page: Any, action: str, name: str) -> None:
    page.click(f"[data-testid={action}-{name}]")
    page.wait_for_selector("[data-testid=saved]")


def test_the_administrator_manages_users_on_the_users_page(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    many = [admin.user("pg")[0] for _ in range(USERS_PAGE + 1)]
    target, target_pw = admin.user("tgt")
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, "admin", secure_server.ADMIN_PASSWORD)
    page.click("[data-testid=site-admin]")
    page.wait_for_selector("[data-testid=users]")
    shot(page, "admin-users", phone=True)

    # Search and paging: every "pg…" user, 25 on the first page, the rest on the next.
    page.fill("#user-q", "pg")
    page.click("[data-testid=user-search] button[type=submit]")
    page.wait_for_selector("[data-testid=users]")
    assert page.inner_text("[data-testid=user-count]") == f"{len(many)} users"
    assert page.locator("[data-testid=users] tbody tr").count() == USERS_PAGE
    page.click("nav.pages >> text=Next")
    page.wait_for_selector("[data-testid=users]")
    assert page.locator("[data-testid=users] tbody tr").count() == 1
    page.fill("#user-q", XSS)  # the query comes back in the field, inert
    page.click("[data-testid=user-search] button[type=submit]")
    page.wait_for_selector("[data-testid=users]")
    assert page.inner_text("[data-testid=user-count]") == "0 users"
    assert_inert(page, secure_server, "admin-users")

    # A new user: the password policy is the API's (refused on the page), then created and able to sign in.
    page.fill("#user-q", "")
    page.click("[data-testid=user-search] button[type=submit]")
    page.fill("#new-username", "madebypage")
    page.fill("#new-email", "made@example.test")
    page.fill("#new-password", "short")
    page.click("[data-testid=user-form] button[type=submit]")
    assert page.locator("[data-testid=form-error]").count() == 1
    page.fill("#new-username", "madebypage")
    page.fill("#new-password", "a-long-enough-password-1")
    page.click("[data-testid=user-form] button[type=submit]")
    page.wait_for_selector("[data-testid=saved]")
    with signed_in_client(secure_server, "madebypage", "a-long-enough-password-1") as client:
        assert client.get("/settings/tokens").status_code == 200

    # Disable (sign-in refused), enable, make and unmake a site administrator, reset two-factor, delete.
    page.fill("#user-q", target)
    page.click("[data-testid=user-search] button[type=submit]")
    page.wait_for_selector(f"[data-testid=user-{target}]")
    _act(page, "disable", target)
    assert page.locator(f"[data-testid=user-{target}] [data-testid=disabled]").count() == 1
    assert page.input_value("#user-q") == target  # the search is kept
    refused = httpx.post(
        f"{secure_server.url}/api/v2/auth/token", json={"identifier": target, "secret": target_pw}, timeout=30
    )
    assert refused.status_code == 401
    _act(page, "enable", target)
    assert page.locator(f"[data-testid=user-{target}] [data-testid=disabled]").count() == 0
    _act(page, "make_admin", target)
    assert page.locator(f"[data-testid=user-{target}] [data-testid=admin]").count() == 1
    with signed_in_client(secure_server, target, target_pw) as client:
        assert client.get("/admin/users").status_code == 200
    _act(page, "unmake_admin", target)
    assert page.locator(f"[data-testid=user-{target}] [data-testid=admin]").count() == 0
    _act(page, "reset_2fa", target)
    page.goto(f"{secure_server.url}/admin/audit?namespace={target}")
    page.wait_for_selector("[data-testid=audit-entries]")
    actions = " ".join(page.locator("[data-testid=audit-entry]").all_inner_texts())
    for action in ("account.disable", "account.enable", "account.admin_grant", "account.admin_revoke"):
        assert action in actions, action
    page.goto(f"{secure_server.url}/admin/users")
    # Removing one's own administration is refused with the service's reason.
    page.fill("#user-q", "admin")
    page.click("[data-testid=user-search] button[type=submit]")
    page.click("[data-testid=unmake_admin-admin]")
    page.wait_for_selector("[data-testid=form-error]")
    page.fill("#user-q", target)
    page.click("[data-testid=user-search] button[type=submit]")
    page.locator(f"[data-testid=user-{target}] summary").click()
    page.locator(f"[data-testid=user-{target}] input[name=confirm]").check()
    page.click(f"[data-testid=delete-{target}]")
    page.wait_for_selector("[data-testid=saved]")
    assert page.locator(f"[data-testid=user-{target}]").count() == 0
    assert admin.client.get(f"/api/v2/users/{target}").status_code == 404

    assert dialogs == []


def _dead_job(server: AppServer) -> int:
    """A dead ``gc.run`` job (a dry run) whose last error carries a payload, written into the server's DB."""
    url = server.settings().effective_database_url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            now = utcnow()
            inserted = conn.execute(
                sa.insert(Job).returning(Job.id),
                {
                    "kind": "gc.run",
                    "payload": json.dumps({"dry_run": True, "actor": "admin"}),
                    "state": "dead",
                    "run_at": now,
                    "attempts": 3,
                    "max_attempts": 3,
                    "last_error": f"gave up: {XSS}",
                    "created_at": now,
                    "finished_at": now,
                },
            )
            return int(inserted.scalar_one())
    finally:
        engine.dispose()


def test_storage_jobs_and_garbage_collection_pages(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, owner_pw = admin.user("store")
    org = admin.org(owner)
    with httpx.Client(base_url=secure_server.url, auth=(owner, owner_pw), timeout=30) as v2:
        pushed = push_image(v2, f"{org}/app", "v1")
    stored = len(pushed.config) + sum(len(layer) for layer in pushed.layers)
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, "admin", secure_server.ADMIN_PASSWORD)

    page.goto(f"{secure_server.url}/admin/storage")
    page.wait_for_selector("[data-testid=namespace-storage]")
    assert int(page.inner_text("[data-testid=blob-count]")) >= 2
    assert org in page.inner_text(f"[data-testid=ns-{org}]")
    shot(page, "admin-storage", phone=True)

    # A dead job: listed with its last error (inert), retried, and then it runs (a dry-run collection).
    job = _dead_job(secure_server)
    page.click("[data-testid=admin-tab-jobs]")
    page.wait_for_selector("[data-testid=job-failures]")
    assert "gave up" in page.inner_text(f"[data-testid=failure-{job}]")
    assert "gc.run" in page.inner_text("[data-testid=job-counts]")
    assert_inert(page, secure_server, "admin-jobs")
    shot(page, "admin-jobs")
    page.click(f"[data-testid=retry-{job}]")
    page.wait_for_selector("[data-testid=saved]")
    assert page.locator(f"[data-testid=retry-{job}]").count() == 0

    page.click("[data-testid=admin-tab-gc]")
    page.wait_for_selector("[data-testid=gc-runs]")

    def runs() -> int:
        page.reload()
        count: int = page.locator("[data-testid=gc-run]").count()
        return count

    _until(lambda: runs() >= 1, "the retried dry run finished")
    shot(page, "admin-gc")

    # Delete the repository: its blobs are garbage. A dry run says what a collection would free; a real one frees it.
    deleted = admin.client.delete(f"/api/v2/repositories/{org}/app")
    assert deleted.status_code in (202, 204), deleted.text
    before = runs()
    page.click("[data-testid=gc-dry-run] button")
    page.wait_for_selector("[data-testid=saved]")
    _until(lambda: runs() == before + 1, "the dry run finished")
    assert "would free" in page.inner_text("[data-testid=gc-run] >> nth=0")
    page.click("[data-testid=gc-collect] button")
    page.wait_for_selector("[data-testid=saved]")
    _until(lambda: runs() == before + 2, "the collection finished")
    newest = page.inner_text("[data-testid=gc-run] >> nth=0")
    assert "collection" in newest
    assert "would free" not in newest
    assert page.inner_text("[data-testid=gc-freed] >> nth=0") != "0 B", stored
    page.goto(f"{secure_server.url}/admin/audit?action=gc.start")
    page.wait_for_selector("[data-testid=audit-entries]")
    assert page.locator("[data-testid=audit-entry]").count() == 2
    assert dialogs == []


def test_users_who_are_not_administrators_find_no_admin_pages(secure_server: AppServer, admin: HubAdmin) -> None:
    user, password = admin.user("plain")
    with signed_in_client(secure_server, user, password) as client:
        assert 'data-testid="site-admin"' not in client.get("/").text
        for path in ("/admin/users", "/admin/storage", "/admin/jobs", "/admin/gc"):
            assert client.get(path).status_code == 404, path
        token = csrf(client, "/settings/tokens")
        for path, form in (
            ("/admin/users", {"action": "make_admin", "username": user}),
            ("/admin/gc", {"action": "collect"}),
            ("/admin/jobs/1/retry", {}),
        ):
            assert client.post(path, data={"csrf_token": token, **form}).status_code == 404, path
            assert client.post(path, data=form).status_code == 403, path  # no CSRF token: refused first
    assert admin.client.get(f"/api/v2/users/{user}").json().get("is_admin") in (False, None)
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:
        assert anonymous.get("/admin/users").status_code == 303


def test_a_visitor_signs_up_and_is_signed_in(browser_context_factory: Any, secure_server: AppServer) -> None:
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    page.goto(f"{secure_server.url}/login")
    page.click("[data-testid=signup-link]")
    page.wait_for_selector("[data-testid=signup-form]")
    shot(page, "signup", phone=True)
    page.fill("#signup-username", "newcomer")
    page.fill("#signup-email", "newcomer@example.test")
    page.fill("#signup-password", "short")  # the API's password policy
    page.click("[data-testid=signup-form] button[type=submit]")
    page.wait_for_selector("[data-testid=form-error]")
    assert page.input_value("#signup-username") == "newcomer"
    page.fill("#signup-username", "admin")  # taken
    page.fill("#signup-password", "a-long-enough-password-2")
    page.click("[data-testid=signup-form] button[type=submit]")
    page.wait_for_selector("[data-testid=form-error]")
    page.fill("#signup-username", XSS[:40])
    page.fill("#signup-password", "a-long-enough-password-2")
    page.click("[data-testid=signup-form] button[type=submit]")
    page.wait_for_selector("[data-testid=form-error]")
    assert_inert(page, secure_server, "signup")
    page.fill("#signup-username", "newcomer")
    page.fill("#signup-password", "a-long-enough-password-2")
    page.click("[data-testid=signup-form] button[type=submit]")
    page.wait_for_selector("[data-testid=signed-in-as]")
    assert page.inner_text("[data-testid=signed-in-as]") == "newcomer"
    assert "/u/newcomer" in page.url
    assert page.locator("[data-testid=site-admin]").count() == 0
    assert dialogs == []
    with signed_in_client(secure_server, "newcomer", "a-long-enough-password-2") as client:
        assert client.get("/signup").status_code == 303  # already signed in
        # Without the CSRF token the form is refused.
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:
        refused = anonymous.post(
            "/signup", data={"username": "nocsrf", "email": "n@example.test", "password": "a-long-enough-password-3"}
        )
        assert refused.status_code == 403


def test_a_deletion_needs_its_confirmation(secure_server: AppServer, admin: HubAdmin) -> None:
    user, _ = admin.user("keep")
    with signed_in_client(secure_server, "admin", secure_server.ADMIN_PASSWORD) as client:
        token = csrf(client, "/admin/users")
        refused = client.post("/admin/users", data={"csrf_token": token, "action": "delete", "username": user})
        assert refused.status_code == 400
        assert admin.client.get(f"/api/v2/users/{user}").status_code == 200
        done = client.post(
            "/admin/users", data={"csrf_token": token, "action": "delete", "username": user, "confirm": "on"}
        )
        assert done.status_code == 303
        assert admin.client.get(f"/api/v2/users/{user}").status_code == 404
