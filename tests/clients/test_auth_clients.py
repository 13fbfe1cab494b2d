"""Real clients against a server with authentication on: skopeo and podman log in through Docker's token flow
with a password, a personal access token and a robot secret; anonymous and wrong-user pulls of a private image
fail as on Docker Hub; a read-only token cannot push; ``podman login`` checks credentials; a stored refresh token
(``docker login``'s identity token) is reused run after run and ends with the password."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ContainersEnv, Tool, docker_ref, make_containers_env
from tests.support.hub import HubAdmin, pat
from tests.support.images import Layout
from tests.support.server import DockyardServer

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path_factory.mktemp("secure-clients") / "data", secure=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def hub(secure: DockyardServer) -> Iterator[HubAdmin]:
    admin = HubAdmin(secure)
    yield admin
    admin.close()


@pytest.fixture
def env(tmp_path: Path, secure: DockyardServer) -> ContainersEnv:
    return make_containers_env(tmp_path / "containers", secure)


@pytest.fixture
def skopeo(env: ContainersEnv) -> Tool:
    return env.tool("skopeo")


@pytest.fixture
def podman(env: ContainersEnv) -> Tool:
    return env.tool("podman")


def refused(output: str) -> bool:
    """skopeo shows the DENIED error's message, or only the 403 status when the refusal was a HEAD request."""
    lowered = output.lower()
    return "denied" in lowered or "403 (forbidden)" in lowered


def push(skopeo: Tool, layout: Layout, ref: str, creds: str) -> None:
    skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout.path}:{layout.tag}", ref)


def inspect(skopeo: Tool, ref: str, creds: str | None = None) -> tuple[int, str]:
    args = ["inspect", "--tls-verify=false", "--raw"]
    args += ["--creds", creds] if creds else ["--no-creds"]
    proc = skopeo.run(*args, ref, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_password_push_private_pull_and_refusals(
    secure: DockyardServer, hub: HubAdmin, skopeo: Tool, image_layout: Layout
) -> None:
    alice, alice_pw = hub.user("alice")
    bob, bob_pw = hub.user("bob")
    ref = docker_ref(secure, f"{alice}/app", "v1")
    push(skopeo, image_layout, ref, f"{alice}:{alice_pw}")
    status, out = inspect(skopeo, ref, f"{alice}:{alice_pw}")
    assert status == 0, out
    # New repositories are private by default: anonymous and another user are refused as on Docker Hub.
    status, out = inspect(skopeo, ref)
    assert status != 0
    assert "authentication required" in out or "unauthorized" in out.lower()
    status, out = inspect(skopeo, ref, f"{bob}:{bob_pw}")
    assert status != 0
    assert refused(out)
    # Bob may not push into Alice's namespace.
    proc = skopeo.run(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"{bob}:{bob_pw}",
        f"oci:{image_layout.path}:{image_layout.tag}",
        docker_ref(secure, f"{alice}/intruder", "v1"),
        check=False,
    )
    assert proc.returncode != 0
    assert refused(proc.stderr)


def test_push_into_a_namespace_without_an_account(
    secure: DockyardServer, hub: HubAdmin, skopeo: Tool, image_layout: Layout
) -> None:
    """Only a site administrator's push may create a namespace (as an organization the administrator owns)."""
    frank, frank_pw = hub.user("frank")
    writer = pat(secure, frank, frank_pw, "repo:write")["token"]
    nowhere = f"nosuch{uuid.uuid4().hex[:8]}"
    for creds in (f"{frank}:{frank_pw}", f"{frank}:{writer}"):
        proc = skopeo.run(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            f"oci:{image_layout.path}:{image_layout.tag}",
            docker_ref(secure, f"{nowhere}/app", "v1"),
            check=False,
        )
        assert proc.returncode != 0
        assert refused(proc.stderr), proc.stderr
    assert hub.client.get(f"/api/v2/orgs/{nowhere}").status_code == 404
    push(skopeo, image_layout, docker_ref(secure, f"{nowhere}/app", "v1"), f"admin:{secure.ADMIN_PASSWORD}")
    owners = hub.client.get(f"/api/v2/orgs/{nowhere}/members").json()["results"]
    assert [(m["username"], m["role"]) for m in owners] == [("admin", "Owner")]  # Hub spells roles capitalised


def test_anonymous_pull_of_a_public_image(
    secure: DockyardServer, hub: HubAdmin, skopeo: Tool, podman: Tool, image_layout: Layout
) -> None:
    carol, carol_pw = hub.user("carol")
    ref = docker_ref(secure, f"{carol}/public", "v1")
    push(skopeo, image_layout, ref, f"{carol}:{carol_pw}")
    hub.set_visibility(f"{carol}/public", private=False)
    status, out = inspect(skopeo, ref)
    assert status == 0, out
    podman.run("pull", "--tls-verify=false", f"{secure.host}/{carol}/public:v1")


def test_personal_access_tokens(secure: DockyardServer, hub: HubAdmin, skopeo: Tool, image_layout: Layout) -> None:
    dave, dave_pw = hub.user("dave")
    writer = pat(secure, dave, dave_pw, "repo:write")["token"]
    reader = pat(secure, dave, dave_pw, "repo:read")["token"]
    ref = docker_ref(secure, f"{dave}/app", "v1")
    push(skopeo, image_layout, ref, f"{dave}:{writer}")
    status, out = inspect(skopeo, ref, f"{dave}:{reader}")
    assert status == 0, out
    proc = skopeo.run(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"{dave}:{reader}",
        f"oci:{image_layout.path}:{image_layout.tag}",
        docker_ref(secure, f"{dave}/app", "v2"),
        check=False,
    )
    assert proc.returncode != 0
    assert refused(proc.stderr)


def test_robot_account_with_pull_on_one_repository(
    secure: DockyardServer, hub: HubAdmin, skopeo: Tool, image_layout: Layout
) -> None:
    owner, owner_pw = hub.user("erin")
    org = hub.org(owner)
    ref = docker_ref(secure, f"{org}/service", "v1")
    push(skopeo, image_layout, ref, f"{owner}:{owner_pw}")
    robot = hub.robot(org, {f"{org}/service": "read"})
    status, out = inspect(skopeo, ref, f"{robot.name}:{robot.secret}")
    assert status == 0, out
    proc = skopeo.run(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"{robot.name}:{robot.secret}",
        f"oci:{image_layout.path}:{image_layout.tag}",
        docker_ref(secure, f"{org}/service", "v2"),
        check=False,
    )
    assert proc.returncode != 0
    assert refused(proc.stderr)


def test_organization_access_token_pushes_and_pulls_only_its_repositories(
    secure: DockyardServer, hub: HubAdmin, skopeo: Tool, image_layout: Layout
) -> None:
    """An OAT signs in with the organization's name (``docker login -u <org>``): push where it has repo-push,
    pull where it has repo-pull, nothing elsewhere; switched off, it signs in no more."""
    owner, owner_pw = hub.user("olga")
    org = hub.org(owner)
    ref = docker_ref(secure, f"{org}/service", "v1")
    push(skopeo, image_layout, ref, f"{owner}:{owner_pw}")
    push(skopeo, image_layout, docker_ref(secure, f"{org}/secret", "v1"), f"{owner}:{owner_pw}")
    resources = [
        {"type": "TYPE_REPO", "path": f"{org}/service", "scopes": ["repo-pull"]},
        {"type": "TYPE_REPO", "path": f"{org}/builds", "scopes": ["repo-pull", "repo-push"]},
    ]
    with httpx.Client(base_url=secure.url, auth=(owner, owner_pw), timeout=30) as client:
        made = client.post(f"/api/v2/orgs/{org}/access-tokens", json={"label": "ci", "resources": resources})
        assert made.status_code == 201, made.text
        token = made.json()["token"]
        assert token.startswith("dy_oat_")
        creds = f"{org}:{token}"
        status, out = inspect(skopeo, ref, creds)
        assert status == 0, out
        push(skopeo, image_layout, docker_ref(secure, f"{org}/builds", "v1"), creds)
        status, out = inspect(skopeo, docker_ref(secure, f"{org}/builds", "v1"), creds)
        assert status == 0, out
        status, out = inspect(skopeo, docker_ref(secure, f"{org}/secret", "v1"), creds)
        assert status != 0
        proc = skopeo.run(
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            creds,
            f"oci:{image_layout.path}:{image_layout.tag}",
            docker_ref(secure, f"{org}/service", "v2"),
            check=False,
        )
        assert proc.returncode != 0
        assert refused(proc.stderr)
        status, out = inspect(skopeo, ref, f"{owner}:{token}")  # the user name is the organization's
        assert status != 0
        switched = client.patch(f"/api/v2/orgs/{org}/access-tokens/{made.json()['id']}", json={"is_active": False})
        assert switched.status_code == 200, switched.text
        status, out = inspect(skopeo, ref, creds)
        assert status != 0


def test_podman_login_push_and_pull(
    secure: DockyardServer, hub: HubAdmin, podman: Tool, skopeo: Tool, image_layout: Layout
) -> None:
    frank, frank_pw = hub.user("frank")
    bad = podman.run("login", "--tls-verify=false", "-u", frank, "-p", "wrong-password", secure.host, check=False)
    assert bad.returncode != 0
    assert podman.run("login", "--tls-verify=false", "-u", frank, "-p", frank_pw, secure.host).returncode == 0
    # With the stored login, pushes and pulls need no credentials on the command line.
    skopeo.run(
        "copy",
        "--dest-tls-verify=false",
        f"oci:{image_layout.path}:{image_layout.tag}",
        docker_ref(secure, f"{frank}/app", "v1"),
    )
    podman.run("pull", "--tls-verify=false", f"{secure.host}/{frank}/app:v1")
    stored = skopeo.run("inspect", "--tls-verify=false", "--raw", docker_ref(secure, f"{frank}/app", "v1"), check=False)
    assert stored.returncode == 0, stored.stderr
    podman.run("logout", secure.host)
    gone = skopeo.run("inspect", "--tls-verify=false", "--raw", docker_ref(secure, f"{frank}/app", "v1"), check=False)
    assert gone.returncode != 0


def test_stored_refresh_token_is_reused_and_ends_with_the_password(
    secure: DockyardServer, hub: HubAdmin, env: ContainersEnv, skopeo: Tool, image_layout: Layout
) -> None:
    """``docker login`` stores a refresh token (``identitytoken``); containers/image presents that same token on
    every run (it never keeps the one a refresh grant returns). It keeps working until the password changes."""
    gina, gina_pw = hub.user("gina")
    ref = docker_ref(secure, f"{gina}/app", "v1")
    push(skopeo, image_layout, ref, f"{gina}:{gina_pw}")
    with httpx.Client(base_url=secure.url, timeout=30) as client:
        issued = client.get("/v2/token", params={"offline_token": "true", "client_id": "docker"}, auth=(gina, gina_pw))
        assert issued.status_code == 200, issued.text
        identity = issued.json()["refresh_token"]
        auth = base64.b64encode(f"{gina}:".encode()).decode()
        Path(env.env["REGISTRY_AUTH_FILE"]).write_text(
            json.dumps({"auths": {secure.host: {"auth": auth, "identitytoken": identity}}})
        )
        for _ in range(2):
            status, out = inspect_stored(skopeo, ref)
            assert status == 0, out
        reset = hub.client.put(f"/api/v2/users/{gina}/password", json={"new_password": "a-brand-new-password"})
        assert reset.status_code == 204, reset.text
    status, out = inspect_stored(skopeo, ref)
    assert status != 0
    assert "unauthorized" in out.lower() or "invalid_grant" in out or "401" in out, out


def inspect_stored(skopeo: Tool, ref: str) -> tuple[int, str]:
    """``skopeo inspect`` with the credentials of the auth file."""
    proc = skopeo.run("inspect", "--tls-verify=false", "--raw", ref, check=False)
    return proc.returncode, proc.stdout + proc.stderr
