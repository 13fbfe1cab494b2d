"""Supply chain of an automated build, end to end with real buildah: a commit pushed to a branch of a loopback git
server and a signed GitHub push payload delivered to the link's webhook → the image appears under the tag the rule
predicts, is signed with the namespace's managed key, so the repository's ``enforce`` trust policy serves it (and
skopeo pulls it), and the referrers API lists its SBOM (SPDX 2.3) and SLSA v1 provenance — DSSE envelopes verified
here independently (the PAE computed by this test, the signature checked with ``cryptography`` against the public
key the API shows), whose in-toto subjects are the image's digest. The same commit built again gives the same
digest."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.builds.executor.conftest import BASE_REPO, BASE_TAG
from tests.builds.executor.test_build import image_files
from tests.signing.helpers import VERIFIED
from tests.support.checks import wait_for
from tests.support.gitrepo import GitServer
from tests.support.hub_api import People, Person, create_repository
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, push_image
from tests.support.server import DockyardServer

pytestmark = [pytest.mark.clients, pytest.mark.embedded_only]

CGROUP_PARENT = "dockyard-test-provenance"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SLSA = "https://slsa.dev/provenance/v1"
SPDX = "https://spdx.dev/Document"
PREDICATE = "in-toto.io/predicate-type"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """A server that runs its builds with the real buildah executor (the default) and looks for jobs often."""
    env = {
        "DOCKYARD_JOBS_POLL_SECONDS": "0.2",
        "DOCKYARD_CREDENTIAL_CACHE_SECONDS": "0",
        "DOCKYARD_BUILD_CGROUP_PARENT": CGROUP_PARENT,
    }
    srv = DockyardServer(tmp_path_factory.mktemp("provenance") / "data", secure=True, env=env)
    srv.start()
    yield srv
    srv.stop()
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        with contextlib.suppress(OSError):
            (hierarchy / CGROUP_PARENT).rmdir()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding, written out here from the DSSE specification."""
    kind = payload_type.encode()
    return b"DSSEv1 " + str(len(kind)).encode() + b" " + kind + b" " + str(len(payload)).encode() + b" " + payload


def verified_statement(envelope: dict[str, Any], public_key: ec.EllipticCurvePublicKey, key_id: str) -> dict[str, Any]:
    """The envelope's in-toto statement, once its one signature verifies with ``public_key`` (raises otherwise)."""
    assert envelope["payloadType"] == IN_TOTO
    payload = base64.b64decode(envelope["payload"])
    (signature,) = envelope["signatures"]
    assert signature["keyid"] == key_id
    public_key.verify(base64.b64decode(signature["sig"]), pae(IN_TOTO, payload), ec.ECDSA(hashes.SHA256()))
    statement: dict[str, Any] = json.loads(payload)
    return statement


def github_push(client: httpx.Client, base: str, secret: str, ref: str, commit: str) -> httpx.Response:
    body = json.dumps({"ref": ref, "after": commit, "head_commit": {"id": commit, "message": "release"}}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={signature}"}
    return client.post(f"{base}/build-link/webhook", content=body, headers=headers)


def finished(admin: Person, base: str, build: str) -> dict[str, Any]:
    def state() -> dict[str, Any] | None:
        found: dict[str, Any] = admin.api.get(f"{base}/builds/{build}").json()
        return found if found["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(state, timeout=600, interval=0.5, what=f"build {build}")


def test_a_built_image_is_signed_and_carries_its_sbom_and_provenance(
    registry: DockyardServer, base_digest: str, git_server: GitServer, tmp_path: Path
) -> None:
    people = People.open(registry)
    try:
        admin = people.admin()
        key = admin.api.post("/api/v2/namespaces/admin/signing-key")
        assert key.status_code == 201, key.text
        managed = key.json()
        public_key = serialization.load_pem_public_key(managed["public_key"].encode())
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        create_repository(admin, "prov-app")
        repo, base = "admin/prov-app", "/api/v2/repositories/admin/prov-app"
        enforced = admin.api.put(
            "/api/v2/namespaces/admin/repositories/prov-app/trust-policy", json={"mode": "enforce", "exempt": []}
        )
        assert enforced.status_code == 200, enforced.text

        work = git_server.repository("prov-app")
        dockerfile = (
            f"FROM {registry.host}/{BASE_REPO}:{BASE_TAG}\n"
            "ARG GREETING\n"
            "COPY greeting.txt /greeting.txt\n"
            'RUN echo "$GREETING from $(cat /greeting.txt)" > /built.txt && chmod 644 /built.txt\n'
        )
        work.commit({"Dockerfile": dockerfile, "greeting.txt": "the git server\n"}, "initial")
        link = admin.api.post(f"{base}/build-link", json={"url": work.url})
        assert link.status_code == 201, link.text
        rule = admin.api.post(
            f"{base}/build-rules",
            json={
                "source_type": "Branch",
                "source_name": "/^rel-([0-9]+)$/",
                "tag": "v{\\1}",
                "build_args": [{"name": "GREETING", "value": "hello", "secret": False}],
            },
        )
        assert rule.status_code == 201, rule.text
        commit = work.commit({"greeting.txt": "release 7\n"}, "release", when=1_700_000_777, branch="rel-7")

        delivered = github_push(people.anonymous, base, link.json()["webhook_secret"], "refs/heads/rel-7", commit)
        assert delivered.status_code == 202, delivered.text
        (build,) = delivered.json()["builds"]
        done = finished(admin, base, build)
        log = admin.api.get(f"{base}/builds/{build}/logs").text
        assert done["state"] == "succeeded", log
        assert (done["tags"], done["commit"]) == (["v7"], commit)
        digest = done["digest"]
        assert "signed with the namespace's managed key" in log, log
        assert "at timestamp 1700000777;" in log  # the commit's time (SOURCE_DATE_EPOCH), set by the pipeline

        # Under enforce the image is served — it is signed — and skopeo pulls it with the file the RUN wrote.
        served = admin.registry.get(f"/v2/{repo}/manifests/v7", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
        assert served.status_code == 200, served.text
        assert (served.headers["docker-content-digest"], served.headers[VERIFIED]) == (digest, "true")
        files = image_files(registry, f"{registry.host}/{repo}:v7", tmp_path / "pulled")
        assert files["built.txt"] == b"hello from release 7\n"
        # ... while an unsigned image in the same repository is refused (the policy is really enforced).
        unsigned = push_image(admin.registry, repo, "unsigned")
        refused = admin.registry.get(f"/v2/{repo}/manifests/unsigned", headers={"Accept": OCI_MANIFEST})
        assert (unsigned.digest != digest, refused.status_code) == (True, 403)

        listed = admin.registry.get(f"/v2/{repo}/referrers/{digest}", params={"artifactType": DSSE})
        assert listed.status_code == 200, listed.text
        referrers = listed.json()["manifests"]
        assert sorted(r["annotations"][PREDICATE] for r in referrers) == [SLSA, SPDX]
        statements: dict[str, dict[str, Any]] = {}
        for referrer in referrers:
            assert referrer["artifactType"] == DSSE
            manifest = admin.registry.get(
                f"/v2/{repo}/manifests/{referrer['digest']}", headers={"Accept": OCI_MANIFEST}
            )
            assert manifest.status_code == 200, manifest.text
            document = manifest.json()
            assert document["subject"]["digest"] == digest
            (layer,) = document["layers"]
            assert layer["mediaType"] == DSSE
            blob = admin.registry.get(f"/v2/{repo}/blobs/{layer['digest']}")
            assert hashlib.sha256(blob.content).hexdigest() == layer["digest"].split(":", 1)[1]
            statement = verified_statement(json.loads(blob.content), public_key, managed["key_id"])
            assert statement["_type"] == "https://in-toto.io/Statement/v1"
            assert statement["subject"] == [
                {"name": f"{registry.host}/{repo}", "digest": {"sha256": digest.split(":", 1)[1]}}
            ]
            assert statement["predicateType"] == referrer["annotations"][PREDICATE]
            statements[statement["predicateType"]] = statement["predicate"]

        sbom = statements[SPDX]
        assert sbom["spdxVersion"] == "SPDX-2.3"
        assert any(p.get("versionInfo") == digest for p in sbom["packages"]), sbom["packages"]

        provenance = statements[SLSA]
        definition, run = provenance["buildDefinition"], provenance["runDetails"]
        assert run["builder"]["id"].startswith(f"{registry.url}/builders/")
        assert run["metadata"]["invocationId"] == f"{registry.url}/api/v2/repositories/{repo}/builds/{build}"
        external = definition["externalParameters"]
        assert external["source"] == {"repository": work.url, "ref": "refs/heads/rel-7", "commit": commit}
        assert external["rule"]["id"] == rule.json()["id"]
        assert (external["rule"]["source_name"], external["rule"]["tag"]) == ("/^rel-([0-9]+)$/", "v{\\1}")
        assert (external["dockerfile"], external["context"], external["build_args"]) == (
            "Dockerfile",
            ".",
            ["GREETING"],
        )
        assert "hello" not in json.dumps(provenance)  # build-arg values are not recorded
        dependencies = definition["resolvedDependencies"]
        assert dependencies[0] == {"uri": f"git+{work.url}@refs/heads/rel-7", "digest": {"gitCommit": commit}}
        assert {d["name"]: d["digest"]["sha256"] for d in dependencies[1:]} == {
            f"{registry.host}/{BASE_REPO}:{BASE_TAG}": base_digest.split(":", 1)[1]
        }

        # The same commit again (build now): the same image, byte for byte (--timestamp is the commit time).
        (again,) = admin.api.post(f"{base}/builds", json={"source_name": "rel-7"}).json()["builds"]
        rebuilt = finished(admin, base, again)
        assert rebuilt["state"] == "succeeded", admin.api.get(f"{base}/builds/{again}/logs").text
        assert (rebuilt["commit"], rebuilt["digest"]) == (commit, digest)
    finally:
        people.close()
