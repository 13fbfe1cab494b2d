"""The trust policy at pull time against a live server: signatures made here with ``cryptography`` in cosign's
layouts (the ``sha256-<hex>.sig`` tag and an OCI 1.1 referrer), keys trusted through the API, ``enforce`` and
``warn``, an index covering its platforms, revocation, exemptions, and bad signatures that never cause a 500."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.signing.helpers import VERIFIED, get, new_key, policy, trust
from tests.support.checks import wait_for
from tests.support.cli import dockyard_cli
from tests.support.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    descriptor,
    error_codes,
    push_blob,
    push_image,
    sha256,
    unique_name,
)
from tests.support.server import DockyardServer

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"


def payload(repo: str, digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": repo},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


def signature_manifest(
    client: httpx.Client,
    repo: str,
    digest: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    subject: dict[str, Any] | None = None,
    body: bytes | None = None,
    signature: str | None = None,
) -> bytes:
    signed = body if body is not None else payload(repo, digest)
    push_blob(client, repo, signed)
    config = b"{}"
    push_blob(client, repo, config)
    sig = signature if signature is not None else base64.b64encode(key.sign(signed, ec.ECDSA(hashes.SHA256()))).decode()
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor(SIMPLE_SIGNING, signed, annotations={SIG_ANNOTATION: sig})],
    }
    if subject is not None:
        doc["artifactType"] = COSIGN_SIG
        doc["subject"] = subject
    return canonical(doc)


def sign(client: httpx.Client, repo: str, digest: str, key: ec.EllipticCurvePrivateKey, **options: Any) -> str:
    """The tag scheme: the signature manifest tagged ``sha256-<hex>.sig``."""
    manifest = signature_manifest(client, repo, digest, key, **options)
    tag = digest.replace(":", "-") + ".sig"
    response = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return tag


def test_enforce_warn_revoke_and_exempt(admin: httpx.Client, server: DockyardServer) -> None:
    repo = unique_name("admin")
    trusted, stranger = new_key(), new_key()
    unsigned = push_image(admin, repo, "unsigned")
    good = push_image(admin, repo, "good")
    wrong = push_image(admin, repo, "wrong")
    good_sig = sign(admin, repo, good.digest, trusted)
    sign(admin, repo, wrong.digest, stranger)
    key_id = trust(admin, trusted)
    policy(admin, "enforce", repo)

    refused = get(admin, repo, "unsigned")
    assert refused.status_code == 403
    assert error_codes(refused) == ["DENIED"]
    assert "trust policy" in refused.json()["errors"][0]["message"]
    assert "enforce" in refused.json()["errors"][0]["message"]
    assert get(admin, repo, unsigned.digest).status_code == 403  # by digest too
    assert get(admin, repo, "wrong").status_code == 403  # signed, but not by a trusted key
    ok = get(admin, repo, "good")
    assert ok.status_code == 200
    assert ok.headers[VERIFIED] == "true"
    shown = admin.get(f"/api/v2/namespaces/admin/repositories/{repo.split('/', 1)[1]}/tags/good").json()
    assert [(x["key_id"], x["verified"], x["format"]) for x in shown["signatures"]] == [(key_id, True, "cosign")]
    other = admin.get(f"/api/v2/namespaces/admin/repositories/{repo.split('/', 1)[1]}/tags/wrong").json()
    assert [x["verified"] for x in other["signatures"]] == [False]
    # The signature itself stays readable, and pushes are never refused.
    assert get(admin, repo, good_sig).status_code == 200
    push_image(admin, repo, "another-unsigned")

    policy(admin, "warn", repo)
    wait_for(lambda: get(admin, repo, "unsigned").status_code == 200)
    warned = get(admin, repo, "unsigned")
    assert warned.headers[VERIFIED] == "false"

    def violation_recorded(mode: str) -> bool:
        return (
            server.execute_sql(
                "UPDATE events SET actor = actor WHERE type = 'policy.violated' AND repository = :repo"
                " AND payload LIKE :mode",
                repo=repo,
                mode=f'%"mode":"{mode}"%',
            )
            >= 1
        )

    for mode in ("enforce", "warn"):  # the refused pulls above, and the served one
        wait_for(partial(violation_recorded, mode))

    policy(admin, "enforce", repo, exempt=[f"{repo}:unsig*"])
    wait_for(lambda: get(admin, repo, "unsigned").status_code == 200)
    assert get(admin, repo, "another-unsigned").status_code == 403

    # Revoking the key: the good image is refused within seconds.
    assert admin.delete(f"/api/v2/namespaces/admin/trusted-keys/{key_id}").status_code == 204
    wait_for(lambda: get(admin, repo, "good").status_code == 403)
    policy(admin, "off", repo)
    wait_for(lambda: get(admin, repo, "good").status_code == 200)


def test_referrer_signatures_and_signed_indexes(admin: httpx.Client) -> None:
    repo = unique_name("admin")
    key = new_key()
    trust(admin, key)
    image = push_image(admin, repo, "ref")
    subject = {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)}
    referrer = signature_manifest(admin, repo, image.digest, key, subject=subject)
    assert (
        admin.put(
            f"/v2/{repo}/manifests/{sha256(referrer)}", content=referrer, headers={"Content-Type": OCI_MANIFEST}
        ).status_code
        == 201
    )
    amd, arm = push_image(admin, repo, None), push_image(admin, repo, None)
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(OCI_MANIFEST, amd.manifest, platform={"os": "linux", "architecture": "amd64"}),
                descriptor(OCI_MANIFEST, arm.manifest, platform={"os": "linux", "architecture": "arm64"}),
            ],
        }
    )
    assert (
        admin.put(f"/v2/{repo}/manifests/multi", content=index, headers={"Content-Type": OCI_INDEX}).status_code == 201
    )
    sign(admin, repo, sha256(index), key)
    policy(admin, "enforce", repo)
    wait_for(lambda: get(admin, repo, "ref").status_code == 200)
    assert get(admin, repo, "ref").headers[VERIFIED] == "true"
    listed = admin.get(f"/api/v2/namespaces/admin/repositories/{repo.split('/', 1)[1]}/tags").json()["results"]
    ref = next(t for t in listed if t["name"] == "ref")
    assert [(x["verified"], x["format"]) for x in ref["signatures"]] == [(True, "referrer")]
    assert get(admin, repo, "multi").status_code == 200
    # The signed index covers its platform manifests.
    assert get(admin, repo, amd.digest).status_code == 200
    assert get(admin, repo, arm.digest).status_code == 200
    policy(admin, "off", repo)


@pytest.mark.parametrize(
    "bad",
    [
        {"body": b'{"critical": {"image": {"docker-manifest-digest": "sha256:' + b"0" * 64 + b'"}}}'},  # other digest
        {"signature": "AAAA"},  # truncated
        {"signature": "!!! not base64 !!!"},
        {"body": b"not json at all"},
    ],
)
def test_bad_signatures_are_not_verified_and_never_a_500(admin: httpx.Client, bad: dict[str, Any]) -> None:
    repo = unique_name("admin")
    key = new_key()
    trust(admin, key)
    image = push_image(admin, repo, "bad")
    sign(admin, repo, image.digest, key, **bad)
    policy(admin, "enforce", repo)
    wait_for(lambda: get(admin, repo, "bad").status_code != 200)
    response = get(admin, repo, "bad")
    assert response.status_code == 403
    assert error_codes(response) == ["DENIED"]
    policy(admin, "off", repo)


def test_only_namespace_owners_manage_trust(server: DockyardServer, admin: httpx.Client) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        assert anon.get("/api/v2/namespaces/admin/trusted-keys").status_code == 401
        assert anon.put("/api/v2/namespaces/admin/trust-policy", json={"mode": "enforce"}).status_code == 401
    bad = admin.post("/api/v2/namespaces/admin/trusted-keys", json={"name": "x", "public_key": "not a key"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    listed = admin.get("/api/v2/namespaces/admin/trusted-keys").json()
    assert listed["count"] == len(listed["results"])
    log = admin.get("/api/v2/auditlogs/admin", params={"action": "trust.policy.change"}).json()
    assert log["logs"]


def test_dockyard_sign_from_the_server(admin: httpx.Client, server: DockyardServer, tmp_path: Path) -> None:
    prefix = tmp_path / "ops"

    def dockyard(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKYARD_DATA_DIR": str(server.data_dir), **server.env}
        return dockyard_cli(*args, env=env, input=stdin)

    made = dockyard("key", "generate", "--output-prefix", str(prefix), "--password-stdin", stdin="s3cret\n")
    assert made.returncode == 0, made.stderr
    repo = unique_name("admin")
    image = push_image(admin, repo, "v1")
    wrong = dockyard("sign", f"{repo}:v1", "--key", f"{prefix}.key", "--password-stdin", stdin="nope\n")
    assert wrong.returncode != 0
    signed = dockyard("sign", f"{repo}:v1", "--key", f"{prefix}.key", "--password-stdin", "--json", stdin="s3cret\n")
    assert signed.returncode == 0, signed.stderr
    result = json.loads(signed.stdout)
    assert result["digest"] == image.digest
    assert result["signature_tag"] == image.digest.replace(":", "-") + ".sig"
    response = admin.post(
        "/api/v2/namespaces/admin/trusted-keys", json={"name": "ops", "public_key": (tmp_path / "ops.pub").read_text()}
    )
    assert response.status_code in (201, 409), response.text
    policy(admin, "enforce", repo)
    wait_for(lambda: get(admin, repo, "v1").status_code == 200)
    assert get(admin, repo, "v1").headers[VERIFIED] == "true"
    policy(admin, "off", repo)


def test_managed_namespace_key_signs_on_the_server(admin: httpx.Client, server: DockyardServer) -> None:
    assert admin.get("/api/v2/namespaces/admin/signing-key").status_code in (200, 404)
    created = admin.post("/api/v2/namespaces/admin/signing-key")
    assert created.status_code == 201, created.text
    managed = created.json()
    assert "PRIVATE" not in managed["public_key"]
    trusted = admin.get("/api/v2/namespaces/admin/trusted-keys").json()["results"]
    assert managed["key_id"] in {k["key_id"] for k in trusted}
    repo = unique_name("admin")
    push_image(admin, repo, "built")
    env = {**os.environ, "DOCKYARD_DATA_DIR": str(server.data_dir), **server.env}
    signed = dockyard_cli("sign", f"{repo}:built", "--namespace-key", env=env)
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.startswith(f"signed {repo}@sha256:")  # without --json: a line for people
    policy(admin, "enforce", repo)
    wait_for(lambda: get(admin, repo, "built").status_code == 200)
    shown = admin.get(f"/api/v2/namespaces/admin/repositories/{repo.split('/', 1)[1]}/tags/built").json()
    assert [(s["key_id"], s["verified"]) for s in shown["signatures"]] == [(managed["key_id"], True)]
    policy(admin, "off", repo)


def test_enforce_applies_to_manifests_fetched_as_blobs(admin: httpx.Client) -> None:
    """A manifest is also served by ``/v2/<name>/blobs/<digest>`` (as distribution does): the trust policy
    decides there as on ``/manifests/``, and signatures stay fetchable both ways."""
    repo = unique_name("admin")
    key = new_key()
    trust(admin, key)
    unsigned = push_image(admin, repo, "unsigned")
    signed = push_image(admin, repo, "signed")
    sig_tag = sign(admin, repo, signed.digest, key)
    sig_digest = get(admin, repo, sig_tag).headers["docker-content-digest"]
    # A manifest whose bytes were also uploaded as an ordinary blob: still the manifest, still refused.
    other = push_image(admin, repo, "other")
    push_blob(admin, repo, other.manifest)
    policy(admin, "enforce", repo)
    wait_for(lambda: get(admin, repo, "unsigned").status_code == 403)

    for method in ("GET", "HEAD"):
        for digest in (unsigned.digest, other.digest):
            refused = admin.request(method, f"/v2/{repo}/blobs/{digest}")
            assert refused.status_code == 403, (method, digest)
            if method == "GET":
                assert error_codes(refused) == ["DENIED"]
                assert "trust policy" in refused.json()["errors"][0]["message"]
        ranged = admin.request(method, f"/v2/{repo}/blobs/{unsigned.digest}", headers={"Range": "bytes=0-9"})
        assert ranged.status_code == 403
        served = admin.request(method, f"/v2/{repo}/blobs/{signed.digest}")
        assert served.status_code == 200
        assert served.headers[VERIFIED] == "true"
        assert admin.request(method, f"/v2/{repo}/blobs/{sig_digest}").status_code == 200
    assert admin.get(f"/v2/{repo}/blobs/{signed.digest}").content == signed.manifest
    # Layers and configs are not manifests: the policy does not apply to them.
    assert admin.get(f"/v2/{repo}/blobs/{sha256(unsigned.config)}").status_code == 200
    policy(admin, "off", repo)
    wait_for(lambda: admin.get(f"/v2/{repo}/blobs/{unsigned.digest}").status_code == 200)


def test_the_tag_listing_shows_each_tag_s_signatures_as_its_own_view_does(admin: httpx.Client) -> None:
    """The listing reads the stored checks of a page of tags at once (``TrustChecker.signatures_of``): the same
    results as each tag's own view, and fresh ones after a key is trusted or revoked."""
    repo = unique_name("admin")
    name = repo.split("/", 1)[1]
    trusted, stranger = new_key(), new_key()
    images = {tag: push_image(admin, repo, tag) for tag in ("good", "wrong", "unsigned", "twice")}
    sign(admin, repo, images["good"].digest, trusted)
    sign(admin, repo, images["wrong"].digest, stranger)
    sign(admin, repo, images["twice"].digest, stranger)
    twice = images["twice"]
    subject = {"mediaType": OCI_MANIFEST, "digest": twice.digest, "size": len(twice.manifest)}
    referrer = signature_manifest(admin, repo, twice.digest, trusted, subject=subject)
    headers = {"Content-Type": OCI_MANIFEST}
    put = admin.put(f"/v2/{repo}/manifests/{sha256(referrer)}", content=referrer, headers=headers)
    assert put.status_code == 201, put.text

    def listed() -> dict[str, list[tuple[Any, ...]]]:
        response = admin.get(f"/api/v2/namespaces/admin/repositories/{name}/tags", params={"page_size": 100})
        assert response.status_code == 200, response.text
        return {
            t["name"]: sorted(((s["key_id"], s["verified"], s["format"]) for s in t["signatures"]), key=repr)
            for t in response.json()["results"]
            if t["name"] in images
        }

    def own(tag: str) -> list[tuple[Any, ...]]:
        shown = admin.get(f"/api/v2/namespaces/admin/repositories/{name}/tags/{tag}").json()
        return sorted(((s["key_id"], s["verified"], s["format"]) for s in shown["signatures"]), key=repr)

    before = listed()  # nothing trusted yet: every signature unverified
    assert before == {tag: own(tag) for tag in images}
    assert not any(verified for found in before.values() for _, verified, _ in found)
    assert before["unsigned"] == []
    assert len(before["twice"]) == 2

    key_id = trust(admin, trusted)
    wait_for(lambda: any(verified for _, verified, _ in listed()["good"]))
    after = listed()
    assert after == {tag: own(tag) for tag in images}
    with httpx.Client(base_url=str(admin.base_url), timeout=30) as web:  # the web hub's tags tab: one badge a tag
        token = re.search(r'name="csrf_token" value="([^"]+)"', web.get("/login").text)
        assert token is not None
        login = {"username": "admin", "password": DockyardServer.ADMIN_PASSWORD, "csrf_token": token.group(1)}
        assert web.post("/login", data=login).status_code == 303
        html = web.get(f"/r/{repo}/tags", params={"ordering": "signature"}).text
        badges = re.findall(r'href="/r/[^"]+/tags/([a-z]+)".*?class="badge sig-([a-z]+)"', html, re.S)
        assert dict(badges) == {"good": "verified", "twice": "verified", "wrong": "signed", "unsigned": "unsigned"}
    assert [verified for _, verified, _ in after["good"]] == [True]
    assert sorted(verified for _, verified, _ in after["twice"]) == [False, True]
    assert [verified for _, verified, _ in after["wrong"]] == [False]

    assert admin.delete(f"/api/v2/namespaces/admin/trusted-keys/{key_id}").status_code == 204
    wait_for(lambda: not any(verified for found in listed().values() for _, verified, _ in found))
    assert listed() == {tag: own(tag) for tag in images}
