"""The web hub in a real browser (Debian's chromium through Playwright) against an in-process server with
authentication on: sign in, push with skopeo and see the tag, the tag page's layers and config, star, sign out;
payloads in READMEs, descriptions, labels and history lines stay inert; forms without their CSRF token are
refused; a private repository's pages are 404 to anonymous visitors and to signed-in outsiders.

Every page visited is photographed into ``test-artifacts/screenshots/`` (the repository and tag pages at phone
width too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.clients.conftest import make_containers_env
from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.images import build_image_layout
from tests.support.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, canonical, descriptor, push_blob, sha256
from tests.support.tools import require_tool
from tests.web.conftest import shot
from tests.web.pages import README_XSS, XSS, assert_inert, csrf, sign_in, signed_in_client, watch_scripts


def push_payload_image(server: AppServer, auth: tuple[str, str], repo: str, tag: str) -> str:
    """An image whose config carries HTML/JS payloads in labels, env, user, ports and history lines."""
    config = canonical(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": [f"EVIL={XSS}"],
                "Cmd": ["/bin/sh", "-c", XSS],
                "User": XSS,
                "Labels": {XSS: XSS},
                "ExposedPorts": {f"80/{XSS}": {}},
            },
            "history": [{"created_by": f"/bin/sh -c {XSS}"}],
            "rootfs": {"type": "layers"},
        }
    )
    layer = f"layer {tag}".encode()
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
        for blob in (config, layer):
            push_blob(client, repo, blob)
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, layer)],
                "annotations": {"note": XSS},
            }
        )
        response = client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201, response.text
    return sha256(body)


def test_sign_in_push_see_tag_star_and_sign_out(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin, tmp_path: Path
) -> None:
    skopeo = require_tool("skopeo")
    busybox = Path(require_tool("busybox")).resolve()
    user, password = admin.user("web")
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, secure_server, user, password)
    shot(page, "explore-signed-in")

    layout = build_image_layout(tmp_path / "layout", user, busybox=busybox)
    env = make_containers_env(tmp_path / "containers", secure_server)
    import subprocess

    subprocess.run(
        [skopeo, "copy", "--dest-tls-verify=false", "--dest-creds", f"{user}:{password}", layout.ref,
         f"docker://{secure_server.host}/{user}/app:v1"],
        env=env.env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    page.goto(f"{secure_server.url}/r/{user}/app")
    assert page.inner_text("[data-testid=repo-name]").startswith(f"{user}/app")
    assert page.inner_text("[data-testid=visibility]") == "Private"
    assert f"docker pull {secure_server.host}/{user}/app" in page.inner_text(".copyline code")
    shot(page, "repository", phone=True)

    page.click("nav.tabs >> text=Tags")
    page.wait_for_selector("[data-testid=tags]")
    assert page.locator("[data-testid=tags] tbody tr").count() == 1
    assert "linux/amd64" in page.inner_text("[data-testid=tags]")
    shot(page, "tags", phone=True)

    page.click("[data-testid=tags] >> text=v1")
    page.wait_for_selector("[data-testid=layers]")
    assert page.inner_text("[data-testid=tag-name]") == "Tag v1"
    layers = page.inner_text("[data-testid=layers]")
    assert "dockyard test layer 0" in layers  # the history line of the layer
    config = page.inner_text("[data-testid=config]")
    for expected in ("PATH=/bin", "/bin/sh", "dockyard.test"):
        assert expected in config
    shot(page, "tag", phone=True)

    page.goto(f"{secure_server.url}/r/{user}/app")
    page.click("[data-testid=star-button]")
    page.wait_for_selector("[data-testid=star-button]:text('Unstar')")
    assert page.inner_text("[data-testid=stars]") == "★ 1"
    page.goto(f"{secure_server.url}/")
    assert f"{user}/app" in page.inner_text("main")  # own and starred lists
    shot(page, "explore-starred")

    page.click("header >> text=Sign out")
    page.wait_for_selector("header >> text=Sign in")
    shot(page, "signed-out")
    # The ended session is ended on the server: the private repository is hidden again.
    response = page.goto(f"{secure_server.url}/r/{user}/app")
    assert response is not None
    assert response.status == 404
    assert dialogs == []


def test_payloads_render_inert(browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin) -> None:
    user, password = admin.user("xss")
    repo = f"{user}/evil"
    push_payload_image(secure_server, (user, password), repo, "v1")
    with httpx.Client(base_url=secure_server.url, auth=(user, password), timeout=30) as client:
        response = client.patch(
            f"/api/v2/namespaces/{user}/repositories/evil",
            json={"description": XSS[:100], "full_description": README_XSS, "is_private": False},
        )
        assert response.status_code == 200, response.text
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    visits = (
        (f"/r/{repo}", "xss-repository"),
        (f"/r/{repo}/tags", "xss-tags"),
        (f"/r/{repo}/tags/v1", "xss-tag"),
        ("/?q=evil", "xss-search"),
        (f"/u/{user}", "xss-user"),
    )
    for path, name in visits:
        response = page.goto(secure_server.url + path)
        assert response is not None
        assert response.status == 200, path
        # The payloads are text: no element they describe exists, no handler attribute, no script but ours.
        assert_inert(page, secure_server, path)
        shot(page, name)
    page.goto(f"{secure_server.url}/r/{repo}")
    assert page.inner_text("[data-testid=description]") == XSS[:100]
    assert page.locator("[data-testid=readme] h1").inner_text() == "Hello"
    assert page.locator("[data-testid=readme] table td").count() == 2  # Markdown still renders
    page.goto(f"{secure_server.url}/r/{repo}/tags/v1")
    assert XSS in page.inner_text("[data-testid=config]")
    assert dialogs == []


def test_posts_without_the_csrf_token_are_refused(secure_server: AppServer, admin: HubAdmin) -> None:
    user, password = admin.user("csrf")
    with httpx.Client(base_url=secure_server.url, auth=(user, password), timeout=30) as api:
        assert (
            api.post(f"/api/v2/namespaces/{user}/repositories", json={"name": "repo1", "is_private": False}).status_code
            == 201
        )
    with signed_in_client(secure_server, user, password) as client:
        for path in (f"/r/{user}/repo1/star", f"/r/{user}/repo1/unstar", "/logout", "/login"):
            assert client.post(path, data={}).status_code == 403, path
            assert client.post(path, data={"csrf_token": "forged"}).status_code == 403, path
        assert "Star" in client.get(f"/r/{user}/repo1").text  # nothing was starred, the session still lives
        response = client.post(f"/r/{user}/repo1/star", data={"csrf_token": csrf(client, f"/r/{user}/repo1")})
        assert response.status_code == 303
    # A form token of one browser is worth nothing in another (it is bound to that browser's cookie).
    with (
        signed_in_client(secure_server, user, password) as first,
        signed_in_client(secure_server, user, password) as other,
    ):
        token = csrf(first, f"/r/{user}/repo1")
        assert other.post(f"/r/{user}/repo1/unstar", data={"csrf_token": token}).status_code == 403


def test_private_repository_pages_are_404_to_anonymous_and_outsiders(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin
) -> None:
    owner, owner_pw = admin.user("owner")
    outsider, outsider_pw = admin.user("outsider")
    with httpx.Client(base_url=secure_server.url, auth=(owner, owner_pw), timeout=30) as client:
        push_payload_image(secure_server, (owner, owner_pw), f"{owner}/secret", "v1")
        assert client.get(f"/api/v2/namespaces/{owner}/repositories/secret").json()["is_private"] is True
    paths = [f"/r/{owner}/secret", f"/r/{owner}/secret/tags", f"/r/{owner}/secret/tags/v1"]
    missing = [f"/r/{owner}/nothing", f"/r/{owner}/nothing/tags", f"/r/{owner}/nothing/tags/v1"]
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:
        for path in paths:
            hidden, absent = anonymous.get(path), anonymous.get(missing[paths.index(path)])
            assert hidden.status_code == absent.status_code == 404, path
            assert "secret" not in hidden.text.split("<main>", 1)[1]
    with signed_in_client(secure_server, outsider, outsider_pw) as client:
        for path in paths:
            assert client.get(path).status_code == 404, path
        assert f"{owner}/secret" not in client.get(f"/u/{owner}").text
        assert f"{owner}/secret" not in client.get("/?q=secret").text
    with signed_in_client(secure_server, owner, owner_pw) as client:
        for path in paths:
            assert client.get(path).status_code == 200, path
    page = browser_context_factory().new_page()
    response = page.goto(f"{secure_server.url}/r/{owner}/secret")
    assert response is not None
    assert response.status == 404
    shot(page, "private-404")


def test_sign_out_everywhere_ends_web_sessions(secure_server: AppServer, admin: HubAdmin) -> None:
    user, password = admin.user("revoke")
    with signed_in_client(secure_server, user, password) as client:
        assert client.get("/").text.count(f'data-testid="signed-in-as">{user}<') == 1
        with httpx.Client(base_url=secure_server.url, auth=(user, password), timeout=30) as api:
            response = api.post(f"/api/v2/users/{user}/revoke-sessions")
            assert response.status_code in (200, 204), response.text
        assert 'data-testid="signed-in-as"' not in client.get("/").text


def test_every_page_has_a_strict_content_security_policy(secure_server: AppServer) -> None:
    with httpx.Client(base_url=secure_server.url, timeout=30) as client:
        for path in ("/", "/login", "/r/nobody/nothing", "/u/admin", "/nowhere"):
            policy = client.get(path).headers["content-security-policy"]
            assert "unsafe-inline" not in policy, path
            assert "script-src 'self'" in policy, path
    cookie = httpx.get(f"{secure_server.url}/login", timeout=30).headers["set-cookie"]  # a first visit
    assert cookie.startswith("dockyard_csrf=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
