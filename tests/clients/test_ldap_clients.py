"""A directory user with a real client: skopeo pushes and pulls with an LDAP password through Docker's token
flow (the account is created by the first sign-in and owns its namespace), and a wrong password is refused.
The directory is Debian's ``slapd`` (``tests/support/ldap.py``), reached over LDAPS with a test CA."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import ContainersEnv, Tool, docker_ref, make_containers_env
from tests.support.images import Layout
from tests.support.ldap import GROUPS_DN, ROOT_DN, ROOT_PASSWORD, USERS_DN, DirectoryEntryUser, SlapdServer
from tests.support.server import DockyardServer
from tests.support.tls import TestCA

pytestmark = pytest.mark.clients

USER, PASSWORD = "ldapuser", "ldap-user-directory-pw"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    base = tmp_path_factory.mktemp("ldap-clients")
    ca = TestCA(base / "ca")
    slapd = SlapdServer(base / "slapd", ca, [DirectoryEntryUser(USER, PASSWORD, f"{USER}@example.org")], {})
    slapd.start()
    try:
        yield from _serving(base, ca, slapd)
    finally:
        slapd.stop()


def _serving(base: Path, ca: TestCA, slapd: SlapdServer) -> Iterator[DockyardServer]:
    env = {
        "DOCKYARD_LDAP_URL": slapd.ldaps_url,
        "DOCKYARD_LDAP_CA_FILE": str(ca.cert_path),
        "DOCKYARD_LDAP_USER_SEARCH_BASE": USERS_DN,
        "DOCKYARD_LDAP_GROUP_SEARCH_BASE": GROUPS_DN,
        "DOCKYARD_LDAP_BIND_DN": ROOT_DN,
        "DOCKYARD_LDAP_BIND_PASSWORD": ROOT_PASSWORD,
    }
    srv = DockyardServer(base / "data", secure=True, env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def skopeo(tmp_path: Path, secure: DockyardServer) -> Tool:
    env: ContainersEnv = make_containers_env(tmp_path / "containers", secure)
    return env.tool("skopeo")


def test_skopeo_pushes_and_pulls_with_a_directory_password(
    secure: DockyardServer, skopeo: Tool, image_layout: Layout, tmp_path: Path
) -> None:
    ref = docker_ref(secure, f"{USER}/app", "v1")
    creds = f"{USER}:{PASSWORD}"
    source = f"oci:{image_layout.path}:{image_layout.tag}"
    skopeo.run("copy", "--dest-tls-verify=false", "--dest-creds", creds, source, ref)
    pulled = skopeo.run("copy", "--src-tls-verify=false", "--src-creds", creds, ref, f"oci:{tmp_path / 'out'}:v1")
    assert pulled.returncode == 0
    wrong = skopeo.run("inspect", "--tls-verify=false", "--raw", "--creds", f"{USER}:not-it", ref, check=False)
    assert wrong.returncode != 0
    assert "401" in wrong.stdout + wrong.stderr or "unauthorized" in (wrong.stdout + wrong.stderr).lower()
    assert secure.query_sql("SELECT auth_source FROM accounts WHERE name = :name", name=USER) == [("ldap",)]
