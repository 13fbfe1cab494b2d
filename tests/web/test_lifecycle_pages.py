"""The lifecycle pages in a real browser: a repository administrator adds a tag immutability rule on the
repository's Lifecycle tab and a push that would move the tag is then refused over ``/v2``; a retention policy
built on the page predicts in its dry run exactly the tags the run then deletes (never an immutable one), and the
history shows both; a site administrator sets a namespace's quota on its page and its owner sees the bar; the pull
rate limits show what the visitor has left. Who may not see a page gets a 404, who sees but may not act a 403."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.oci import OCI_MANIFEST, error_codes, push_image
from tests.web.conftest import shot
from tests.web.pages import assert_inert, csrf, sign_in, signed_in_client, watch_scripts

PULLS_PER_WINDOW = 1000


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    """Pull rate limits on (generous: only the page's figures are under test)."""
    return {
        **SIGN_IN_OFTEN,
        "DOCKYARD_RATE_LIMIT_AUTHENTICATED": str(PULLS_PER_WINDOW),
        "DOCKYARD_RATE_LIMIT_ANONYMOUS": "500",
        "DOCKYARD_RATE_LIMIT_WINDOW_SECONDS": "21600",
    }


@pytest.fixture
def owner(admin: HubAdmin, secure_server: AppServer) -> Iterator[tuple[str, str, httpx.Client]]:
    """A user with a Basic-auth ``/v2`` client of their own."""
    name, password = admin.user("life")
    with httpx.Client(base_url=secure_server.url, auth=(name, password), timeout=30) as client:
        yield name, password, client


def _lifecycle(page: Any, server: AppServer, repo: str) -> None:
    """From the repository's page to its Lifecycle tab, as a person would."""
    page.goto(f"{server.url}/r/{repo}")
    page.click("nav.tabs >> text=Lifecycle")
    page.wait_for_selector("[data-testid=lifecycle]")


def _submit(page: Any, form: str) -> None:
    page.click(f"[data-testid={form}] button[type=submit]")
    page.wait_for_selector("[data-testid=saved], [data-testid=form-error], [data-testid=dry-run-result]")


def _manifest(client: httpx.Client, repo: str, tag: str) -> bytes:
    response = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200, response.text
    return response.content


def test_an_immutability_rule_added_on_the_page_refuses_moving_the_tag(
    browser_context_factory: Any, secure_server: AppServer, owner: tuple[str, str, httpx.Client]
) -> None:
    user, password, v2 = owner
    repo = f"{user}/app"
    push_image(v2, repo, "v1")
    other = push_image(v2, repo, "candidate")
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, user, password)
    _lifecycle(page, secure_server, repo)
    assert page.inner_text("[data-testid=immutable-state]") == "Off"

    page.fill("#immutable-regex", "^v[0-9]+$")
    _submit(page, "add-immutable")
    page.check("#immutable-enabled")
    _submit(page, "immutable-switch")
    assert page.inner_text("[data-testid=immutable-state]") == "On"
    assert "^v[0-9]+$" in page.inner_text("[data-testid=immutable-rules]")
    page.fill("#immutable-regex", "(unclosed")  # RE2 refuses it: the service's message, on the page
    _submit(page, "add-immutable")
    assert page.locator("[data-testid=form-error]").count() == 1
    assert_inert(page, secure_server, "repository lifecycle")
    shot(page, "lifecycle-repository", phone=True)

    # Over /v2 the tag cannot be moved now, and the message names the rule; the same digest again is fine.
    moved = v2.put(f"/v2/{repo}/manifests/v1", content=other.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert moved.status_code == 403, moved.text
    assert error_codes(moved) == ["DENIED"]
    assert "^v[0-9]+$" in moved.text
    same = _manifest(v2, repo, "v1")
    assert v2.put(f"/v2/{repo}/manifests/v1", content=same, headers={"Content-Type": OCI_MANIFEST}).status_code == 201

    # Removing the rule on the page lets the tag move again.
    page.click("[data-testid=immutable-rules] button:has-text('remove')")
    page.wait_for_selector("[data-testid=saved]")
    assert "No rules" in page.inner_text("[data-testid=immutable-rules]")
    moved = v2.put(f"/v2/{repo}/manifests/v1", content=other.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert moved.status_code == 201, moved.text
    assert dialogs == []


def test_retention_dry_run_predicts_the_run_and_the_history_counts_it(
    browser_context_factory: Any, secure_server: AppServer, owner: tuple[str, str, httpx.Client]
) -> None:
    user, password, v2 = owner
    repo = f"{user}/web"
    for tag in ("old-1", "old-2", "old-3", "old-4"):
        push_image(v2, repo, tag)
        time.sleep(1.05)  # distinct push times, whatever the database's timestamp resolution
    push_image(v2, repo, "release-1")
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, user, password)
    _lifecycle(page, secure_server, repo)
    assert page.locator("[data-testid=retention-inherited]").count() == 1

    page.fill("#repo-pattern", "release-*")
    page.select_option("#repo-template", "always")
    _submit(page, "add-retention-rule")
    page.fill("#repo-pattern", "old-*")
    page.select_option("#repo-template", "latestPushedK")
    page.fill("#repo-value", "1")
    _submit(page, "add-retention-rule")
    rules = page.inner_text("[data-testid=retention-rules]")
    assert "release-*" in rules
    assert "old-*" in rules
    page.fill("#immutable-regex", "^old-1$")  # protected: never a retention candidate
    _submit(page, "add-immutable")
    page.check("#immutable-enabled")
    _submit(page, "immutable-switch")

    _submit(page, "dry-run")
    predicted = page.locator("[data-testid=dry-run-tags] code").all_inner_texts()
    assert predicted == ["old-2", "old-3"]
    shot(page, "lifecycle-dry-run")
    assert v2.get(f"/v2/{repo}/tags/list").json()["tags"] == ["old-1", "old-2", "old-3", "old-4", "release-1"]

    _submit(page, "run-now")
    assert v2.get(f"/v2/{repo}/tags/list").json()["tags"] == ["old-1", "old-4", "release-1"]
    history = page.locator("[data-testid=retention-history] tbody tr").all_inner_texts()
    assert len(history) == 2
    assert history[0].split("\t")[1].startswith("run (manual)")
    assert history[0].split("\t")[3:5] == ["2", "0"]
    assert history[1].split("\t")[1].startswith("dry run")
    assert "B" in history[0].split("\t")[5]  # the bytes freed, as a size

    # Removing a rule on the page: only the rule that keeps the release tags is left.
    page.locator("[data-testid=retention-rules] tr:has-text('old-*') button:has-text('Remove')").click()
    page.wait_for_selector("[data-testid=saved]")
    assert "old-*" not in page.inner_text("[data-testid=retention-rules]")
    shot(page, "lifecycle-history")


def test_quota_set_by_a_site_administrator_and_pull_limits_seen_by_the_owner(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin, owner: tuple[str, str, httpx.Client]
) -> None:
    user, password, v2 = owner
    org = admin.org(user)
    push_image(v2, f"{org}/app", "v1")
    as_admin = browser_context_factory().new_page()
    sign_in(as_admin, secure_server, "admin", secure_server.ADMIN_PASSWORD)
    as_admin.goto(f"{secure_server.url}/orgs/{org}")
    as_admin.click("[data-testid=namespace-lifecycle]")
    as_admin.fill("#storage-amount", "1")
    as_admin.select_option("#storage-unit", "MB")
    as_admin.fill("#repository-limit", "3")
    as_admin.fill("#soft-percent", "50")
    _submit(as_admin, "set-quota")
    assert as_admin.locator("[data-testid=saved]").count() == 1
    shot(as_admin, "lifecycle-namespace-admin")

    page = browser_context_factory().new_page()
    sign_in(page, secure_server, user, password)
    page.goto(f"{secure_server.url}/orgs/{org}")
    page.click("[data-testid=namespace-lifecycle]")
    page.wait_for_selector("[data-testid=quota]")
    assert page.inner_text("[data-testid=quota-limit]") == "1.0 MB"
    assert page.get_attribute("#quota-meter", "max") == "1000000"
    assert page.get_attribute("#quota-meter", "high") == "500000"
    assert int(page.get_attribute("#quota-meter", "value") or "0") > 0  # the pushed image counts
    assert page.inner_text("[data-testid=quota-repositories]") == "1"
    assert page.locator("[data-testid=set-quota]").count() == 0  # limits are the site administrators'

    remaining = page.inner_text("[data-testid=limits-remaining]")
    assert remaining.startswith(f"{PULLS_PER_WINDOW} of {PULLS_PER_WINDOW}")
    _manifest(v2, f"{org}/app", "v1")  # a pull: a manifest GET
    v2.head(f"/v2/{org}/app/manifests/v1", headers={"Accept": OCI_MANIFEST})  # not a pull
    page.reload()
    assert page.inner_text("[data-testid=limits-remaining]").startswith(f"{PULLS_PER_WINDOW - 1} of")

    # A namespace immutability rule added on the page protects the namespace's tags.
    page.fill("#immutable-pattern", "v*")
    page.select_option("#immutable-syntax", "glob")
    _submit(page, "add-immutable")
    assert "v*" in page.inner_text("[data-testid=immutable-rules]")
    other = push_image(v2, f"{org}/app", "next")
    moved = v2.put(f"/v2/{org}/app/manifests/v1", content=other.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert moved.status_code == 403, moved.text
    assert_inert(page, secure_server, "namespace lifecycle")
    shot(page, "lifecycle-namespace", phone=True)

    # The owner may not set limits: the form is refused by the quota service (403, said on the page).
    with signed_in_client(secure_server, user, password) as client:
        token = csrf(client, f"/namespaces/{org}/lifecycle")
        refused = client.post(
            f"/namespaces/{org}/lifecycle",
            data={"csrf_token": token, "action": "set_quota", "storage_amount": "9", "storage_unit": "TB"},
        )
        assert refused.status_code == 403
        assert re.search(r'data-testid="form-error"', refused.text)


def test_who_may_not_see_gets_404_and_who_may_not_act_403(
    secure_server: AppServer, admin: HubAdmin, owner: tuple[str, str, httpx.Client]
) -> None:
    user, password, v2 = owner
    repo = f"{user}/hidden"
    push_image(v2, repo, "v1")  # private: a new repository of a user's namespace
    reader, reader_pw = admin.user("reader")
    outsider, outsider_pw = admin.user("outsider")
    with httpx.Client(base_url=secure_server.url, auth=(user, password), timeout=30) as api:
        response = api.put(f"/api/v2/repositories/{repo}/collaborators/{reader}", json={"permission": "read"})
        assert response.status_code in (200, 201), response.text
    with signed_in_client(secure_server, reader, reader_pw) as client:
        assert client.get(f"/r/{repo}").status_code == 200
        assert client.get(f"/r/{repo}/lifecycle").status_code == 403
        assert client.get(f"/namespaces/{user}/lifecycle").status_code == 403
    with signed_in_client(secure_server, outsider, outsider_pw) as client:
        assert client.get(f"/r/{repo}/lifecycle").status_code == 404
        token = csrf(client, "/settings/tokens")
        refused = client.post(f"/r/{repo}/lifecycle", data={"csrf_token": token, "action": "dry_run"})
        assert refused.status_code == 404
        assert client.get(f"/namespaces/{unique('nobody')}/lifecycle").status_code == 404
    with signed_in_client(secure_server, user, password) as client:
        assert client.get(f"/r/{repo}/lifecycle").status_code == 200
        assert client.post(f"/r/{repo}/lifecycle", data={"action": "run_now"}).status_code == 403  # no CSRF token
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:
        assert anonymous.get(f"/r/{repo}/lifecycle").status_code == 303
        assert anonymous.get(f"/namespaces/{user}/lifecycle").status_code == 303
