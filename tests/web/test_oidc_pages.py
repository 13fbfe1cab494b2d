"""Single sign-on with a real OpenID provider on loopback (``tests/support/oidc_provider.py``: the npm package
``oidc-provider``), driven by the browser of the web hub's tests: the "Sign in with …" button, the provider's
login and consent pages, the callback; first sign-in creating the user, or refused when automatic creation is off
and nobody created the account (a pre-provisioned one is linked; the local administrator never is); groups →
teams at each sign-in, a group gone at the provider taking its membership away (and only that); the CLI secret
pushing and pulling with skopeo and Basic on /v2, regenerated; the provider stopped → the sign-in page still
renders, the button gives an error page, and the local administrator signs in with a password."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import make_containers_env
from tests.support.app_server import AppServer
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.images import build_image_layout
from tests.support.oidc_provider import OidcProvider
from tests.support.tools import require_tool
from tests.web.conftest import shot
from tests.web.pages import sign_in

PROVIDER_NAME = "Test IdP"
ORG = unique("sso")


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OidcProvider, AppServer]]:
    """The provider and a Dockyard that signs in with it (groups "<ORG>/<team>" are teams; "ops-people" maps to
    <ORG>/ops), with the organization and its teams dev, ops and qa."""
    root = tmp_path_factory.mktemp("oidc")
    server = AppServer(root / "data", secure=True)
    idp = OidcProvider(root / "provider", f"{server.url}/login/oidc/callback")
    idp.start()
    server.env.update(
        SIGN_IN_OFTEN,
        **idp.settings_env(
            DOCKYARD_OIDC_PROVIDER_NAME=PROVIDER_NAME,
            DOCKYARD_OIDC_TEAM_MAPPING=f"ops-people={ORG}/ops",
        ),
    )
    server.start()
    admin = HubAdmin(server)
    admin._ok(admin.client.post("/api/v2/orgs", json={"orgname": ORG, "owner": "admin"}), 201)
    for team in ("dev", "ops", "qa"):
        admin._ok(admin.client.post(f"/api/v2/orgs/{ORG}/groups", json={"name": team}), 201)
    admin.close()
    try:
        yield idp, server
    finally:
        server.stop()
        idp.stop()


@pytest.fixture(scope="module")
def admin(provider: tuple[OidcProvider, AppServer]) -> Iterator[HubAdmin]:
    hub = HubAdmin(provider[1])
    yield hub
    hub.close()


def sso_sign_in(page: Any, server: AppServer, login: str, password: str) -> None:
    """From Dockyard's sign-in page through the provider's login (and consent) back to Dockyard."""
    page.goto(f"{server.url}/login?next=/settings/tokens")
    page.click("[data-testid=oidc-sign-in]")
    page.wait_for_selector("#provider-sign-in")
    page.fill("#login", login)
    page.fill("#password", password)
    page.click("#provider-sign-in")
    page.wait_for_load_state()
    if page.locator("#provider-consent").count():
        page.click("#provider-consent")
    page.wait_for_url(f"{server.url}/**")
    page.wait_for_load_state()


def members(admin: HubAdmin, team: str) -> set[str]:
    body = admin._ok(admin.client.get(f"/api/v2/orgs/{ORG}/groups/{team}/members"))
    return {member["username"] for member in body["results"]}


def audit(admin: HubAdmin, namespace: str) -> list[dict[str, Any]]:
    logs: list[dict[str, Any]] = admin._ok(admin.client.get(f"/api/v2/auditlogs/{namespace}"))["logs"]
    return logs


def test_first_sign_in_creates_the_user_and_groups_follow_the_provider(
    browser_context_factory: Any, provider: tuple[OidcProvider, AppServer], admin: HubAdmin
) -> None:
    idp, server = provider
    name = unique("alice")
    idp.set_user(name, "provider-pw", preferred_username=name, email=f"{name}@example.test",
                 groups=[f"{ORG}/dev", "ops-people", "unmapped", f"{ORG}/nosuchteam"])  # fmt: skip
    page = browser_context_factory().new_page()
    page.goto(f"{server.url}/login")
    assert page.inner_text("[data-testid=oidc-sign-in]") == f"Sign in with {PROVIDER_NAME}"
    shot(page, "login-with-sso")
    sso_sign_in(page, server, name, "provider-pw")
    assert page.url == f"{server.url}/settings/tokens"  # where the sign-in set out to go
    assert page.inner_text("[data-testid=signed-in-as]") == name

    user = admin._ok(admin.client.get(f"/api/v2/users/{name}"))
    assert user["username"] == name
    assert members(admin, "dev") == {name}
    assert members(admin, "ops") == {name}
    assert members(admin, "qa") == set()
    own = [entry["action"] for entry in audit(admin, name)]
    assert {"account.create", "oidc.user.create", "login.success"} <= set(own)
    org_log = [(e["action"], e["actor"], e["data"].get("team")) for e in audit(admin, ORG) if e["name"] == name]
    assert ("team.member.add", "oidc", "dev") in org_log
    assert ("team.member.add", "oidc", "ops") in org_log

    # An owner adds the user to qa by hand; the provider drops "ops-people": the next sign-in takes away ops — the
    # membership that group gave — and leaves dev and the hand-made qa.
    admin._ok(admin.client.post(f"/api/v2/orgs/{ORG}/groups/qa/members", json={"member": name}), 200, 201)
    idp.set_user(name, "provider-pw", preferred_username=name, groups=[f"{ORG}/dev"])
    again = browser_context_factory().new_page()
    sso_sign_in(again, server, name, "provider-pw")
    assert again.inner_text("[data-testid=signed-in-as]") == name
    assert members(admin, "dev") == {name}
    assert members(admin, "ops") == set()
    assert members(admin, "qa") == {name}
    removed = [e for e in audit(admin, ORG) if e["action"] == "team.member.remove" and e["name"] == name]
    assert [(e["actor"], e["data"]["team"], e["data"]["group"]) for e in removed] == [("oidc", "ops", "ops-people")]

    # The same provider identity signs in as the same user, whatever its user name claim says now.
    idp.set_user(name, "provider-pw", preferred_username="renamed" + name[-6:], groups=[])
    third = browser_context_factory().new_page()
    sso_sign_in(third, server, name, "provider-pw")
    assert third.inner_text("[data-testid=signed-in-as]") == name
    assert members(admin, "dev") == set()


def test_cli_secret_pushes_and_pulls_with_skopeo(
    browser_context_factory: Any, provider: tuple[OidcProvider, AppServer], admin: HubAdmin, tmp_path: Path
) -> None:
    skopeo = require_tool("skopeo")
    busybox = Path(require_tool("busybox")).resolve()
    idp, server = provider
    name = unique("cli")
    idp.set_user(name, "provider-pw", preferred_username=name, groups=[])
    page = browser_context_factory().new_page()
    sso_sign_in(page, server, name, "provider-pw")
    page.click("[data-testid=cli-secret-link]")
    page.wait_for_selector("[data-testid=cli-secret]")
    secret = page.inner_text("[data-testid=cli-secret] code")
    assert secret.startswith("dy_cli_")
    shot(page, "cli-secret")

    layout = build_image_layout(tmp_path / "layout", name, busybox=busybox)
    env = make_containers_env(tmp_path / "containers", server)
    ref = f"docker://{server.host}/{name}/app:v1"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([skopeo, *args], env=env.env, capture_output=True, text=True, timeout=120, check=False)

    pushed = run("copy", "--dest-tls-verify=false", "--dest-creds", f"{name}:{secret}", layout.ref, ref)
    assert pushed.returncode == 0, pushed.stderr
    pulled = run("copy", "--src-tls-verify=false", "--src-creds", f"{name}:{secret}", ref, f"oci:{tmp_path / 'out'}:v1")
    assert pulled.returncode == 0, pulled.stderr
    # Basic on /v2 and on the token endpoint; the secret is not a web password.
    assert httpx.get(f"{server.url}/v2/{name}/app/tags/list", auth=(name, secret), timeout=30).json()["tags"] == ["v1"]
    token = httpx.get(f"{server.url}/v2/token", params={"service": server.host}, auth=(name, secret), timeout=30)
    assert token.status_code == 200
    assert httpx.get(f"{server.url}/v2/token", auth=("someoneelse", secret), timeout=30).status_code == 401

    page.click("[data-testid=cli-secret-form] button")
    page.wait_for_selector("[data-testid=cli-secret]")
    renewed = page.inner_text("[data-testid=cli-secret] code")
    assert renewed != secret
    assert httpx.get(f"{server.url}/v2/token", auth=(name, secret), timeout=30).status_code == 401
    inspected = run("inspect", "--tls-verify=false", "--creds", f"{name}:{renewed}", ref)
    assert inspected.returncode == 0, inspected.stderr
    assert "oidc.cli_secret.regenerate" in [e["action"] for e in audit(admin, name)]


def test_callback_without_this_browsers_state_is_refused(provider: tuple[OidcProvider, AppServer]) -> None:
    _, server = provider
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        started = browser.get("/login/oidc", params={"next": "/"})
        assert started.status_code == 303
        assert started.headers["location"].startswith(provider[0].issuer)
        state = httpx.URL(started.headers["location"]).params["state"]
    # Another browser (no state cookie) brings the state back: refused before anything reaches the provider.
    forged = httpx.get(f"{server.url}/login/oidc/callback", params={"state": state, "code": "x"}, timeout=30)
    assert forged.status_code == 403
    assert "dockyard_session" not in forged.headers.get("set-cookie", "")
    # The provider's error answer is shown, not a 500.
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        state = httpx.URL(browser.get("/login/oidc").headers["location"]).params["state"]
        denied = browser.get("/login/oidc/callback", params={"state": state, "error": "access_denied"})
        assert denied.status_code == 403
        assert "access_denied" in denied.text


def test_without_automatic_creation_only_provisioned_users_sign_in(
    browser_context_factory: Any, provider: tuple[OidcProvider, AppServer], admin: HubAdmin
) -> None:
    idp, server = provider
    server.stop()
    server.env["DOCKYARD_OIDC_AUTO_CREATE_USERS"] = "false"
    server.start()
    try:
        stranger = unique("carol")
        idp.set_user(stranger, "provider-pw", preferred_username=stranger, groups=[f"{ORG}/dev"])
        page = browser_context_factory().new_page()
        sso_sign_in(page, server, stranger, "provider-pw")
        assert "no Dockyard account" in page.inner_text("[data-testid=error-message]")
        assert page.locator("[data-testid=signed-in-as]").count() == 0
        shot(page, "sso-refused")
        assert admin.client.get(f"/api/v2/users/{stranger}").status_code == 404
        assert members(admin, "dev") == set()

        known, _ = admin.user("dave")  # created by the administrator first: linked at its first sign-in
        idp.set_user(known, "provider-pw", preferred_username=known, groups=[f"{ORG}/dev"])
        page = browser_context_factory().new_page()
        sso_sign_in(page, server, known, "provider-pw")
        assert page.inner_text("[data-testid=signed-in-as]") == known
        assert members(admin, "dev") == {known}
        assert "oidc.user.link" in [e["action"] for e in audit(admin, known)]

        # A provider user named like the local administrator never becomes the administrator.
        idp.set_user("admin-at-idp", "provider-pw", preferred_username="admin")
        page = browser_context_factory().new_page()
        sso_sign_in(page, server, "admin-at-idp", "provider-pw")
        assert "site administrator" in page.inner_text("[data-testid=error-message]")
        assert page.locator("[data-testid=signed-in-as]").count() == 0
    finally:
        server.stop()
        server.env.pop("DOCKYARD_OIDC_AUTO_CREATE_USERS")
        server.start()


def test_provider_down_the_local_administrator_still_signs_in(
    browser_context_factory: Any, provider: tuple[OidcProvider, AppServer]
) -> None:
    idp, server = provider
    idp.stop()
    page = browser_context_factory().new_page()
    response = page.goto(f"{server.url}/login")
    assert response is not None
    assert response.status == 200
    page.click("[data-testid=oidc-sign-in]")
    page.wait_for_selector("[data-testid=error-message]")
    assert page.inner_text("h1") == "Single sign-on is unavailable"
    assert "cannot be reached" in page.inner_text("[data-testid=error-message]")
    shot(page, "sso-unavailable")
    page.click("[data-testid=password-sign-in]")
    sign_in(page, server, "admin", server.ADMIN_PASSWORD)
