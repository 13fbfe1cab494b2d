"""A cosign signature replicated with its image is still verified at the destination: a push rule copies a signed
and an unsigned image (and the signature's ``sha256-<hex>.sig`` tag) to a second Dockyard whose namespace trusts
the same public key under an ``enforce`` trust policy; there the signed image pulls (verified) and the unsigned one
is refused with ``DENIED``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import make_containers_env
from tests.replication.conftest import add_rule, remote_digest, settled
from tests.signing.helpers import VERIFIED, get, new_key, policy, trust
from tests.signing.test_trust_policy import sign
from tests.support.checks import unique, wait_for
from tests.support.hub import HubAdmin
from tests.support.oci import error_codes, push_image
from tests.support.server import DockyardServer


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    server = DockyardServer(tmp_path_factory.mktemp("trusting") / "data", secure=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote_admin(remote: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=remote.url, auth=("admin", remote.ADMIN_PASSWORD), timeout=60) as client:
        yield client


def test_replicated_signature_satisfies_the_destinations_trust_policy(
    admin: HubAdmin,
    org: str,
    registry_client: httpx.Client,
    remote: DockyardServer,
    remote_admin: httpx.Client,
    tmp_path: Path,
) -> None:
    key = new_key()
    trust(remote_admin, key)  # the destination's ``admin`` namespace trusts the key the source signs with
    policy(remote_admin, "enforce")
    rule = add_rule(
        admin,
        org,
        direction="push",
        remote_url=remote.url,
        remote_namespace="admin",
        username="admin",
        password=remote.ADMIN_PASSWORD,
        trigger="event",
    )
    app = unique("app")
    signed = push_image(registry_client, f"{org}/{app}", "signed")
    unsigned = push_image(registry_client, f"{org}/{app}", "unsigned")
    signature_tag = sign(registry_client, f"{org}/{app}", signed.digest, key)
    auth = ("admin", remote.ADMIN_PASSWORD)
    wait_for(
        lambda: remote_digest(remote.url, f"admin/{app}", signature_tag, auth) is not None,
        timeout=90,
        what="the signature replicated",
    )
    history = settled(admin, org, rule["name"], count=3, timeout=90)
    assert all(run["state"] == "succeeded" for run in history), history

    wait_for(lambda: get(remote_admin, f"admin/{app}", "signed").status_code == 200, what="signed image verified")
    pulled = get(remote_admin, f"admin/{app}", "signed")
    assert pulled.headers[VERIFIED] == "true"
    assert pulled.headers["docker-content-digest"] == signed.digest
    refused = get(remote_admin, f"admin/{app}", "unsigned")
    assert refused.status_code == 403, refused.text
    assert error_codes(refused) == ["DENIED"]
    assert unsigned.digest in refused.text

    # a real client: skopeo copies the signed image out of the destination, and is refused the unsigned one
    tools = make_containers_env(tmp_path / "containers", remote)
    skopeo = tools.tool("skopeo")
    creds = f"admin:{remote.ADMIN_PASSWORD}"
    host = remote.url.removeprefix("http://")
    copied = skopeo.run(
        "copy", "--src-tls-verify=false", "--src-creds", creds,
        f"docker://{host}/admin/{app}:signed", f"oci:{tmp_path / 'out'}:signed", check=False,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    denied = skopeo.run(
        "copy", "--src-tls-verify=false", "--src-creds", creds,
        f"docker://{host}/admin/{app}:unsigned", f"oci:{tmp_path / 'out'}:unsigned", check=False,
    )  # fmt: skip
    assert denied.returncode != 0
    assert "denied" in denied.stderr.lower() or "403" in denied.stderr
