"""The signing-trust, replication, pull-through cache and build-settings pages in a real browser, each checked by
what it really changes: a key trusted and an ``enforce`` policy set on the pages make ``/v2`` refuse an unsigned
image (403 DENIED) and serve a signed one, until the key is removed; a replication rule added and run on its page
copies an image to Debian's ``docker-registry`` on loopback, and the run's page lists the artifacts; a git link and
a build rule made on the Builds page are what the Hub API lists, and the trigger URL shown once works; a proxy
added, changed and removed by a site administrator on ``/admin/proxies`` is what the API lists. Secrets typed into
a form are never shown back; names carrying HTML/JS stay inert; outsiders get the API's 404/403; forms without
their CSRF token are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.proxy.conftest import ReferenceRegistry
from tests.replication.conftest import REPLICATION_ENV, remote_digest
from tests.signing.helpers import get, new_key, pem
from tests.signing.test_trust_policy import sign
from tests.support.app_server import AppServer
from tests.support.checks import wait_for
from tests.support.hub import HubAdmin
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.oci import error_codes, push_image
from tests.web.conftest import shot
from tests.web.pages import XSS, assert_inert, csrf, sign_in, signed_in_client, watch_scripts

SECRET = "hunter2-never-shown"
KEY_NAME = f"ci {XSS}"[:100]  # the form's maxlength


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    return {**SIGN_IN_OFTEN, **REPLICATION_ENV}  # replication remotes on loopback


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[ReferenceRegistry]:
    workdir = tmp_path / "reference"
    workdir.mkdir()
    registry = ReferenceRegistry(workdir)
    registry.start()
    yield registry
    registry.stop()


def _owner_with_org(admin: HubAdmin) -> tuple[str, str, str]:
    owner, password = admin.user("own")
    return owner, password, admin.org(owner)


def test_trusted_key_and_enforce_policy_decide_pulls(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, password, org = _owner_with_org(admin)
    repo = f"{org}/app"
    key = new_key()
    with httpx.Client(base_url=secure_server.url, auth=(owner, password), timeout=30) as registry:
        unsigned = push_image(registry, repo, "unsigned")
        signed = push_image(registry, repo, "signed")
        sign(registry, repo, signed.digest, key)
        page = browser_context_factory().new_page()
        dialogs = watch_scripts(page)
        sign_in(page, secure_server, owner, password)

        page.goto(f"{secure_server.url}/orgs/{org}")
        page.click("[data-testid=namespace-trust]")
        page.wait_for_selector("[data-testid=trusted-keys]")
        assert page.inner_text("[data-testid=policy-mode]") == "off"
        page.fill("#key-name", KEY_NAME)
        page.fill("#key-pem", "not a key")
        page.click("[data-testid=add-key] button[type=submit]")
        assert "public_key" in page.inner_text("[data-testid=form-error]")  # the service's refusal, on the page
        page.fill("#key-name", KEY_NAME)
        page.fill("#key-pem", pem(key))
        page.click("[data-testid=add-key] button[type=submit]")
        page.wait_for_selector("[data-testid=saved]")
        listed = registry.get(f"/api/v2/namespaces/{org}/trusted-keys").json()["results"]
        assert [k["name"] for k in listed] == [KEY_NAME]
        key_id = listed[0]["key_id"]
        assert page.inner_text("[data-testid=key-id]") == key_id
        page.fill("#identity-issuer", "https://token.actions.githubusercontent.com")
        page.fill("#identity-subject", r"https://github\.com/acme/.+")
        page.fill("#identity-name", f"release {XSS}")
        page.click("[data-testid=add-identity] button[type=submit]")
        page.wait_for_selector("[data-testid=saved]")
        identities = registry.get(f"/api/v2/namespaces/{org}/trusted-identities").json()["results"]
        assert [i["subject"] for i in identities] == [r"https://github\.com/acme/.+"]
        page.click("[data-testid=create-managed-key] button")
        page.wait_for_selector("[data-testid=managed-key-id]")
        managed = registry.get(f"/api/v2/namespaces/{org}/signing-key").json()
        assert page.inner_text("[data-testid=managed-key-id]") == managed["key_id"]
        assert page.locator(f"[data-testid=key-{managed['key_id'][:12]}]").count() == 1  # trusted too
        assert_inert(page, secure_server, "namespace trust")
        shot(page, "trust-namespace", phone=True)

        # The repository's own policy: enforce, set on its Trust tab.
        page.goto(f"{secure_server.url}/r/{org}/app")
        page.click("nav.tabs >> text=Trust")
        page.wait_for_selector("[data-testid=policy-form]")
        assert page.locator("[data-testid=policy-inherited]").count() == 1
        page.check("#mode-enforce")
        page.click("[data-testid=policy-form] button[type=submit]")
        page.wait_for_selector("[data-testid=saved]")
        assert page.inner_text("[data-testid=policy-mode]") == "enforce"
        assert_inert(page, secure_server, "repository trust")
        shot(page, "trust-repository")

        refused = get(registry, repo, "unsigned")
        assert refused.status_code == 403
        assert error_codes(refused) == ["DENIED"]
        assert get(registry, repo, unsigned.digest).status_code == 403
        wait_for(lambda: get(registry, repo, "signed").status_code == 200, timeout=30, what="the signed pull")

        # Removing the key on the page: the signed image is refused too.
        page.goto(f"{secure_server.url}/namespaces/{org}/trust")
        page.locator(f"[data-testid=key-{key_id[:12]}] button").click()
        page.wait_for_selector("[data-testid=saved]")
        left = registry.get(f"/api/v2/namespaces/{org}/trusted-keys").json()["results"]
        assert [k["key_id"] for k in left] == [managed["key_id"]]
        wait_for(lambda: get(registry, repo, "signed").status_code == 403, timeout=30, what="the key's removal")
    assert dialogs == []


def test_trust_pages_refuse_outsiders_and_forms_without_their_token(secure_server: AppServer, admin: HubAdmin) -> None:
    owner, password, org = _owner_with_org(admin)
    with httpx.Client(base_url=secure_server.url, auth=(owner, password), timeout=30) as registry:
        push_image(registry, f"{org}/hidden", "v1")  # private by default
    outsider, outsider_pw = admin.user("out")
    with signed_in_client(secure_server, outsider, outsider_pw) as client:
        assert client.get(f"/namespaces/{org}/trust").status_code == 403  # namespaces are public
        assert client.get(f"/r/{org}/hidden/trust").status_code == 404  # the repository is not theirs to see
        assert client.get(f"/namespaces/{org}/replication").status_code == 403
        assert client.get(f"/r/{org}/hidden/builds").status_code == 404
        assert client.get("/admin/proxies").status_code == 403
        token = csrf(client, "/settings/tokens")
        refused = client.post(
            f"/namespaces/{org}/trust", data={"csrf_token": token, "action": "set_policy", "mode": "off"}
        )
        assert refused.status_code == 403
    with signed_in_client(secure_server, owner, password) as client:
        no_token = client.post(f"/namespaces/{org}/trust", data={"action": "set_policy", "mode": "enforce"})
        assert no_token.status_code == 403
    with httpx.Client(base_url=secure_server.url, auth=(owner, password), timeout=30) as api:
        assert api.get(f"/api/v2/namespaces/{org}/trust-policy").json()["mode"] == "off"
        # A repository administrator who does not own the namespace: the repository's settings tabs, not its Trust
        # tab (the policy is the namespace owners').
        assert api.post(f"/api/v2/orgs/{org}/members", json={"member": outsider}).status_code == 201
        team = api.post(f"/api/v2/orgs/{org}/groups", json={"name": "repo-admins"})
        assert team.status_code == 201, team.text
        joined = api.post(f"/api/v2/orgs/{org}/groups/repo-admins/members", json={"member": outsider})
        assert joined.status_code in (200, 201), joined.text
        granted = api.post(
            f"/api/v2/repositories/{org}/hidden/groups", json={"group_name": "repo-admins", "permission": "admin"}
        )
        assert granted.status_code in (200, 201), granted.text
    trust_tab = f'href="/r/{org}/hidden/trust"'
    with signed_in_client(secure_server, outsider, outsider_pw) as client:
        html = client.get(f"/r/{org}/hidden").text
        assert f'href="/r/{org}/hidden/settings"' in html
        assert trust_tab not in html
        assert client.get(f"/r/{org}/hidden/trust").status_code == 403
    with signed_in_client(secure_server, owner, password) as client:
        assert trust_tab in client.get(f"/r/{org}/hidden").text


def test_replication_rule_added_and_run_on_the_page(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin, reference: ReferenceRegistry
) -> None:
    owner, password, org = _owner_with_org(admin)
    with httpx.Client(base_url=secure_server.url, auth=(owner, password), timeout=30) as registry:
        image = push_image(registry, f"{org}/app", "v1")
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, owner, password)
    page.goto(f"{secure_server.url}/orgs/{org}")
    page.click("[data-testid=namespace-replication]")
    page.wait_for_selector("[data-testid=add-rule]")
    page.fill("#rule-name", "to-mirror")
    page.check("#direction-push")
    page.fill("#rule-remote", reference.url)
    page.fill("#rule-remote-ns", "mirror")
    page.fill("#rule-username", "someone")
    page.fill("#rule-password", SECRET)
    page.fill("#rule-tags", "v*")
    page.click("[data-testid=add-rule] button[type=submit]")
    page.wait_for_selector("[data-testid=saved]")
    assert SECRET not in page.content()
    assert page.locator("[data-testid=rule-to-mirror]").count() == 1
    with httpx.Client(base_url=secure_server.url, auth=(owner, password), timeout=30) as api:
        rule = api.get(f"/api/v2/namespaces/{org}/replication/rules/to-mirror").json()
    assert (rule["remote_namespace"], rule["tag_filter"], rule["has_password"]) == ("mirror", "v*", True)
    shot(page, "replication", phone=True)

    # The same name again: the service's conflict, on the page, with the form kept (but not the password).
    page.fill("#rule-name", "to-mirror")
    page.fill("#rule-remote", reference.url)
    page.fill("#rule-password", SECRET)
    page.click("[data-testid=add-rule] button[type=submit]")
    assert page.locator("[data-testid=form-error]").count() == 1
    assert SECRET not in page.content()
    page.goto(f"{secure_server.url}/namespaces/{org}/replication")

    # The remote accepts no credentials: the rule without them does the copy.
    page.fill("#rule-name", "plain")
    page.fill("#rule-remote", reference.url)
    page.fill("#rule-remote-ns", "mirror")
    page.click("[data-testid=add-rule] button[type=submit]")
    page.wait_for_selector("[data-testid=saved]")
    page.locator("[data-testid=rule-plain] [data-testid=run-now]").click()
    page.wait_for_selector("[data-testid=saved]")
    page.locator("[data-testid=rule-plain] [data-testid=runs] a").first.click()
    page.wait_for_selector("[data-testid=run]")

    def finished() -> bool:
        page.reload()
        return page.inner_text("[data-testid=run] [data-testid=run-state]") in ("succeeded", "failed")

    wait_for(finished, timeout=90, interval=0.5, what="the replication run")
    assert page.inner_text("[data-testid=run] [data-testid=run-state]") == "succeeded"
    assert "copied" in page.inner_text("[data-testid=results]")
    shot(page, "replication-run")
    assert remote_digest(reference.url, "mirror/app", "v1") == image.digest

    page.goto(f"{secure_server.url}/namespaces/{org}/replication")
    page.locator("[data-testid=rule-to-mirror] button:has-text('Remove')").click()
    page.wait_for_selector("[data-testid=saved]")
    assert page.locator("[data-testid=rule-to-mirror]").count() == 0
    assert dialogs == []


def test_link_and_build_rules_on_the_builds_page(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, password, org = _owner_with_org(admin)
    with httpx.Client(base_url=secure_server.url, auth=(owner, password), timeout=30) as api:
        created = api.post(f"/api/v2/namespaces/{org}/repositories", json={"name": "built", "is_private": True})
        assert created.status_code == 201, created.text
        page = browser_context_factory().new_page()
        dialogs = watch_scripts(page)
        sign_in(page, secure_server, owner, password)
        page.goto(f"{secure_server.url}/r/{org}/built/builds")
        page.wait_for_selector("[data-testid=not-linked]")
        page.fill("#link-url", "git://127.0.0.1:9/app.git")
        page.fill("#link-user", "bot")
        page.fill("#link-token", SECRET)
        page.click("[data-testid=link-form] button[type=submit]")
        page.wait_for_selector("[data-testid=link-secrets]")
        assert page.locator("[data-testid=build-error]").count() == 0
        trigger_url = page.inner_text("[data-testid=trigger-url] code")
        assert f"/api/v2/repositories/{org}/built/trigger/" in trigger_url
        assert SECRET not in page.content()
        shot(page, "builds-linked")
        link = api.get(f"/api/v2/repositories/{org}/built/build-link").json()
        assert link["url"] == "git://127.0.0.1:9/app.git"

        page.goto(f"{secure_server.url}/r/{org}/built/builds")
        assert page.locator("[data-testid=link-secrets]").count() == 0  # shown once
        page.select_option("#rule-type", "Tag")
        page.fill("#rule-source", "/^v([0-9]+)$/")
        page.fill("#rule-tag", "{\\2}")
        page.click("[data-testid=rule-form] button[type=submit]")
        assert "capture group" in page.inner_text("[data-testid=build-error]")
        page.select_option("#rule-type", "Tag")
        page.fill("#rule-source", "/^v([0-9]+)$/")
        page.fill("#rule-tag", "{\\1}-stable")
        page.fill("#rule-dockerfile", "docker/Dockerfile")
        page.fill("#rule-context", f"/src{XSS[:30]}")
        page.fill("#rule-args", "VERSION=1")
        page.fill("#rule-secret-args", f"TOKEN={SECRET}")
        page.check("#rule-latest")
        page.click("[data-testid=rule-form] button[type=submit]")
        page.wait_for_selector("[data-testid=saved]")
        assert SECRET not in page.content()
        rules = api.get(f"/api/v2/repositories/{org}/built/build-rules").json()
        assert [(r["source_type"], r["source_name"], r["tag"], r["dockerfile"], r["also_latest"]) for r in rules] == [
            ("Tag", "/^v([0-9]+)$/", "{\\1}-stable", "docker/Dockerfile", True)
        ]
        assert {a["name"]: a["value"] for a in rules[0]["build_args"]} == {"VERSION": "1", "TOKEN": None}
        assert page.inner_text("[data-testid=rule-tag]") == "{\\1}-stable"
        assert_inert(page, secure_server, "build rules")
        shot(page, "builds-rules", phone=True)

        # Changed in place: the same rule, its new tag template, its build args (the secret one too) kept.
        page.click("[data-testid=edit-rule-1] summary")
        page.fill("#edit1-tag", "{\\1}-lts")
        page.uncheck("#edit1-latest")
        page.click("[data-testid=edit-rule-1] button[type=submit]")
        page.wait_for_selector("[data-testid=saved]")
        changed = api.get(f"/api/v2/repositories/{org}/built/build-rules").json()
        assert [(r["id"], r["tag"], r["also_latest"], r["dockerfile"]) for r in changed] == [
            (rules[0]["id"], "{\\1}-lts", False, "docker/Dockerfile")
        ]
        assert changed[0]["build_args"] == rules[0]["build_args"]

        # The trigger URL shown once is the real one; a made-up token is refused.
        called = httpx.post(trigger_url, json={"source_type": "Tag", "source_name": "nothing"}, timeout=30)
        assert called.status_code == 202, called.text
        wrong = httpx.post(trigger_url.replace("/trigger/", "/trigger/x"), json={}, timeout=30)
        assert wrong.status_code == 401

        page.locator("[data-testid=rule] button:has-text('Remove')").click()
        page.wait_for_selector("[data-testid=saved]")
        assert api.get(f"/api/v2/repositories/{org}/built/build-rules").json() == []
        page.locator("[data-testid=build-link] button:has-text('Unlink')").click()
        page.wait_for_selector("[data-testid=not-linked]")
        assert api.get(f"/api/v2/repositories/{org}/built/build-link").status_code == 404

    # A reader of the repository sees the builds but not the link's forms, and may not post them.
    reader, reader_pw = admin.user("rd")
    admin.team(org, [reader], {"built": "read"})
    with signed_in_client(secure_server, reader, reader_pw) as client:
        seen = client.get(f"/r/{org}/built/builds")
        assert seen.status_code == 200
        assert "link-form" not in seen.text
        token = csrf(client, f"/r/{org}/built/builds")
        refused = client.post(f"/r/{org}/built/builds/settings", data={"csrf_token": token, "action": "unlink"})
        assert refused.status_code == 403
    assert dialogs == []


def test_site_administrator_manages_proxies(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    _, _, org = _owner_with_org(admin)
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, "admin", secure_server.ADMIN_PASSWORD)
    page.click("[data-testid=site-proxies]")
    page.wait_for_selector("[data-testid=add-proxy]")
    page.fill("#proxy-namespace", org)
    page.fill("#proxy-upstream", "ftp://example.com")
    page.click("[data-testid=add-proxy] button[type=submit]")
    assert page.locator("[data-testid=form-error]").count() == 1
    page.fill("#proxy-namespace", org)
    page.fill("#proxy-upstream", "http://127.0.0.1:9")
    page.fill("#proxy-username", "puller")
    page.fill("#proxy-password", SECRET)
    page.fill("#proxy-ttl", "120")
    page.click("[data-testid=add-proxy] button[type=submit]")
    page.wait_for_selector("[data-testid=saved]")
    assert SECRET not in page.content()
    row = page.locator(f"[data-testid=proxy-{org}]")
    assert "puller" in row.inner_text()
    assert "0 repositories" in row.locator("[data-testid=proxy-status]").inner_text()
    shot(page, "admin-proxies", phone=True)

    listed = admin.client.get("/api/v2/proxies").json()["results"]
    mine = next(p for p in listed if p["namespace"] == org)
    assert (mine["upstream_url"], mine["username"], mine["has_password"], mine["tag_ttl_seconds"]) == (
        "http://127.0.0.1:9",
        "puller",
        True,
        120,
    )

    # Edit: a new TTL, the credentials kept as they are (the password field left blank), then removed.
    edit = page.locator(f"[data-testid=edit-proxy-{org}]")
    edit.locator("input[name=tag_ttl_seconds]").fill("30")
    edit.locator("button:has-text('Save')").click()
    page.wait_for_selector("[data-testid=saved]")
    mine = next(p for p in admin.client.get("/api/v2/proxies").json()["results"] if p["namespace"] == org)
    assert (mine["tag_ttl_seconds"], mine["username"], mine["has_password"]) == (30, "puller", True)
    edit = page.locator(f"[data-testid=edit-proxy-{org}]")
    edit.locator("input[name=clear_credentials]").check()
    edit.locator("input[name=username]").fill("")
    edit.locator("button:has-text('Save')").click()
    page.wait_for_selector("[data-testid=saved]")
    mine = next(p for p in admin.client.get("/api/v2/proxies").json()["results"] if p["namespace"] == org)
    assert (mine["username"], mine["has_password"]) == (None, False)

    page.locator(f"[data-testid=edit-proxy-{org}] button:has-text('Stop proxying')").click()
    page.wait_for_selector("[data-testid=saved]")
    assert all(p["namespace"] != org for p in admin.client.get("/api/v2/proxies").json()["results"])
    assert dialogs == []
    with signed_in_client(secure_server, *admin.user("nobody")) as client:
        assert client.get("/admin/proxies").status_code == 403
