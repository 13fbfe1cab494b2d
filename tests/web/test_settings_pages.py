"""The settings pages in a real browser: a repository's description, README and visibility edited on its settings
page and seen on its overview; a personal access token created on the tokens page (its secret shown once) and
used by skopeo to push, then revoked; a webhook added on the repository's webhooks page, a test delivery received
by a real receiver and seen in the delivery history, and redelivered. Every state-changing form is refused
without its CSRF token; settings are for the repository's administrators."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import make_containers_env
from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.images import build_image_layout
from tests.support.tools import require_tool
from tests.support.webhook_receiver import WebhookReceiver
from tests.web.conftest import shot
from tests.web.pages import README_XSS, XSS, assert_inert, csrf, sign_in, signed_in_client, watch_scripts


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    return {**SIGN_IN_OFTEN, "DOCKYARD_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}  # the test receiver is on loopback


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as made:
        yield made


def _create_repo(server: AppServer, user: str, password: str, name: str, *, private: bool = True) -> None:
    with httpx.Client(base_url=server.url, auth=(user, password), timeout=30) as api:
        response = api.post(f"/api/v2/namespaces/{user}/repositories", json={"name": name, "is_private": private})
        assert response.status_code == 201, response.text


def test_edit_description_readme_and_visibility(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    user, password = admin.user("settings")
    _create_repo(secure_server, user, password, "app")
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, user, password)
    page.goto(f"{secure_server.url}/r/{user}/app")
    page.click("nav.tabs >> text=Settings")
    page.wait_for_selector("[data-testid=settings-form]")
    shot(page, "repo-settings", phone=True)
    page.fill("#description", f"Fresh description {XSS[:40]}")
    page.fill("#full_description", f"# The app\n\nIt *works*.\n\n{README_XSS}")
    page.check("input[name=visibility][value=public]")
    page.click("[data-testid=settings-form] button[type=submit]")
    page.wait_for_selector("[data-testid=saved]")
    shot(page, "repo-settings-saved")

    page.goto(f"{secure_server.url}/r/{user}/app")
    assert page.inner_text("[data-testid=description]") == f"Fresh description {XSS[:40]}"
    assert page.locator("[data-testid=readme] h1").first.inner_text() == "The app"
    assert page.locator("[data-testid=readme] em").inner_text() == "works"
    assert page.inner_text("[data-testid=visibility]") == "Public"
    assert_inert(page, secure_server, "edited repository")
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:  # public now: anyone sees it
        assert anonymous.get(f"/r/{user}/app").status_code == 200
    assert dialogs == []


def test_settings_are_for_administrators(secure_server: AppServer, admin: HubAdmin) -> None:
    owner, owner_pw = admin.user("sowner")
    other, other_pw = admin.user("sother")
    _create_repo(secure_server, owner, owner_pw, "pub", private=False)
    _create_repo(secure_server, owner, owner_pw, "priv")
    with signed_in_client(secure_server, other, other_pw) as client:
        assert client.get(f"/r/{owner}/pub/settings").status_code == 403
        assert "/settings" not in client.get(f"/r/{owner}/pub").text.split("<main>", 1)[1]
        token = csrf(client, f"/r/{owner}/pub")
        changed = client.post(f"/r/{owner}/pub/settings", data={"csrf_token": token, "description": "mine now"})
        assert changed.status_code == 403
        assert client.get(f"/r/{owner}/priv/settings").status_code == 404
        assert client.post(f"/r/{owner}/priv/settings", data={"csrf_token": token}).status_code == 404
        assert client.get(f"/r/{owner}/pub/webhooks").status_code in (403, 404)
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:
        assert anonymous.get(f"/r/{owner}/pub/settings").status_code == 303  # to the sign-in page
        assert anonymous.get("/settings/tokens").headers["location"] == "/login?next=/settings/tokens"
    with signed_in_client(secure_server, owner, owner_pw) as client:
        for path in (f"/r/{owner}/pub/settings", "/settings/tokens", f"/r/{owner}/pub/webhooks"):
            assert client.post(path, data={"description": "x", "label": "x", "name": "x"}).status_code == 403, path
            assert client.post(path, data={"csrf_token": "forged"}).status_code == 403, path
        assert "mine now" not in client.get(f"/r/{owner}/pub").text
        too_long = client.post(
            f"/r/{owner}/pub/settings", data={"csrf_token": csrf(client, f"/r/{owner}/pub"), "description": "x" * 101}
        )
        assert too_long.status_code == 400
        assert "at most 100" in too_long.text


def test_create_a_token_push_with_it_and_revoke_it(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin, tmp_path: Path
) -> None:
    skopeo = require_tool("skopeo")
    busybox = Path(require_tool("busybox")).resolve()
    user, password = admin.user("tokens")
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, user, password)
    page.click("header a[href='/settings/tokens']")
    page.wait_for_selector("[data-testid=token-form]")
    shot(page, "tokens-empty")
    page.fill("#label", "ci <b>push</b>")
    page.select_option("#scope", "repo:write")
    page.click("[data-testid=token-form] button[type=submit]")
    page.wait_for_selector("[data-testid=new-token]")
    secret = page.inner_text("[data-testid=new-token] code").strip()
    assert secret.startswith("dy_pat_")
    assert page.locator("[data-testid=tokens] tbody tr").count() == 1
    assert "ci <b>push</b>" in page.inner_text("[data-testid=tokens]")
    shot(page, "tokens-created")
    page.goto(f"{secure_server.url}/settings/tokens")  # the secret is gone for good
    assert page.locator("[data-testid=new-token]").count() == 0
    assert page.locator("[data-testid=tokens] tbody tr").count() == 1
    assert secret not in page.content()

    layout = build_image_layout(tmp_path / "layout", user, busybox=busybox)
    env = make_containers_env(tmp_path / "containers", secure_server)

    def push(tag: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", f"{user}:{secret}", layout.ref,
             f"docker://{secure_server.host}/{user}/bytoken:{tag}"],
            env=env.env, capture_output=True, timeout=120, check=False,
        )  # fmt: skip

    pushed = push("v1")
    assert pushed.returncode == 0, pushed.stderr.decode()
    page.goto(f"{secure_server.url}/r/{user}/bytoken/tags")
    assert "v1" in page.inner_text("[data-testid=tags]")

    page.goto(f"{secure_server.url}/settings/tokens")
    page.click("[data-testid=tokens] button:text-is('Revoke')")
    page.wait_for_selector("[data-testid=token-state]:text-is('revoked')")
    shot(page, "tokens-revoked")
    assert push("v2").returncode != 0
    page.click("[data-testid=tokens] button:text-is('Delete')")
    page.wait_for_selector("text=No tokens yet.")


def test_add_a_webhook_see_a_delivery_and_redeliver(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin, receiver: WebhookReceiver
) -> None:
    user, password = admin.user("hooks")
    _create_repo(secure_server, user, password, "hooked")
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, user, password)
    page.goto(f"{secure_server.url}/r/{user}/hooked")
    page.click("nav.tabs >> text=Webhooks")
    page.wait_for_selector("[data-testid=webhook-form]")
    shot(page, "webhooks-empty")
    page.fill("#hook-name", "ci")
    page.fill("#hook-url", receiver.url("/hook"))
    page.click("[data-testid=webhook-form] button[type=submit]")
    page.wait_for_selector("[data-testid=new-webhook]")
    assert len(page.inner_text("[data-testid=new-webhook] code").strip()) >= 20
    assert page.locator("[data-testid=webhook]").count() == 1
    shot(page, "webhooks-added")

    page.goto(f"{secure_server.url}/r/{user}/hooked/webhooks")
    page.click("[data-testid=test-webhook]")
    received = receiver.wait_for(1, timeout=30)
    assert received[0].headers.get("x-dockyard-signature")
    _wait_for_states(page, ["delivered"])
    shot(page, "webhooks-delivered")
    page.click("[data-testid=redeliver]")
    receiver.wait_for(2, timeout=30)
    _wait_for_states(page, ["delivered", "delivered"])
    assert "(redelivery)" in page.inner_text("[data-testid=deliveries]")


def _wait_for_states(page: Any, states: list[str]) -> None:
    for _ in range(60):
        page.reload()
        if page.locator("[data-testid=delivery-state]").all_inner_texts() == states:
            return
        page.wait_for_timeout(500)
    raise AssertionError(page.locator("[data-testid=delivery-state]").all_inner_texts())
