"""Keyless (certificate) signatures through a live server: the server is given the trusted root of a fake Sigstore
(``tests/support/fake_sigstore.py``) in ``DOCKYARD_SIGSTORE_TRUSTED_ROOT``, the ``admin`` namespace trusts
identities through the Hub API, and images get OCI 1.1 referrers carrying the fake's keyless bundles as cosign v3
pushes them. Under ``enforce`` an image signed by a trusted identity is served and one signed by anybody else is
refused; the tag view names the identity; removing the identity, or replacing the trusted root, refuses the image
within seconds. Signatures are verified ahead of pulls: a pushed signature gets its ``signature_checks`` row from a
``trust.verify`` job, and a new trusted key re-verifies the namespace (``trust.reverify``), both without a GET."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.signing.keyless import identity_id
from dockyard.trust.anchors import CACHE_SECONDS
from tests.signing.helpers import VERIFIED, get, new_key, policy, tag_signatures, trust
from tests.support.checks import wait_for
from tests.support.fake_sigstore import ISSUER, FakeSigstore
from tests.support.oci import OCI_MANIFEST, PushedImage, error_codes, push_blob, push_image, sha256, unique_name
from tests.support.server import DockyardServer
from tests.unit.signing.cosign_layout import Repo, bundle_manifest

IDENTITIES = "/api/v2/namespaces/admin/trusted-identities"
TEAM = r".*@team\.example\.test"  # the subject pattern of the first test's identity
FAKE = FakeSigstore(name="live")


@pytest.fixture(scope="module")
def trusted_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sigstore") / "trusted_root.json"
    path.write_bytes(FAKE.trusted_root_json())
    return path


@pytest.fixture(scope="module")
def server_env(trusted_root: Path) -> dict[str, str]:
    return {"DOCKYARD_SIGSTORE_TRUSTED_ROOT": str(trusted_root)}


def add_identity(client: httpx.Client, subject: str, issuer: str = ISSUER, name: str = "ci") -> str:
    response = client.post(IDENTITIES, json={"issuer": issuer, "subject": subject, "name": name})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["issuer"], body["subject"], body["name"]) == (issuer, subject, name)
    assert body["identity_id"] == identity_id(issuer, subject)
    return str(body["identity_id"])


def push_bundle(client: httpx.Client, repo: str, image: PushedImage, bundle: dict[str, Any]) -> str:
    """``bundle`` as cosign v3 attaches it: an OCI 1.1 referrer of ``image`` whose one layer is the bundle."""
    data = json.dumps(bundle).encode()
    subject = {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)}
    manifest = bundle_manifest(Repo(), data, subject=subject)
    push_blob(client, repo, b"{}")  # the referrer's empty config
    push_blob(client, repo, data)
    digest = sha256(manifest)
    response = client.put(f"/v2/{repo}/manifests/{digest}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest


def signed_image(client: httpx.Client, repo: str, tag: str, **options: Any) -> PushedImage:
    image = push_image(client, repo, tag)
    push_bundle(client, repo, image, FAKE.keyless_bundle(image.digest, **options))
    return image


def refused(response: httpx.Response) -> bool:
    return response.status_code == 403 and error_codes(response) == ["DENIED"]


def settled(check: Callable[[], bool], changed_at: float, timeout: float = 8.0) -> None:
    """``check`` holds, and still holds once every worker has read again what it cached (policies, identities,
    the trusted root: for up to ``CACHE_SECONDS``) before the change made at ``changed_at`` (``time.monotonic()``):
    one worker seeing a change is not all of them seeing it."""
    wait_for(check, timeout=timeout)
    time.sleep(max(0.0, changed_at + CACHE_SECONDS + 0.2 - time.monotonic()))
    for _ in range(4):
        assert check()


# -- reaching behind the API: the server's database (rows are counted by no-op UPDATEs) -----------------------------

CHECKS = """UPDATE signature_checks SET verified = verified WHERE manifest_id = (
    SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id
    WHERE r.name = :repo AND m.digest = :digest
)"""
VERIFIED_CHECKS = """UPDATE signature_checks SET verified = verified WHERE verified = :yes AND manifest_id = (
    SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id
    WHERE r.name = :repo AND m.digest = :digest
)"""
MARK_CHECKS = """UPDATE signature_checks SET keys_version = 'marked' WHERE manifest_id = (
    SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id
    WHERE r.name = :repo AND m.digest = :digest
)"""
REWRITTEN_CHECKS = """UPDATE signature_checks SET verified = verified
WHERE keys_version <> 'marked' AND verified = :yes AND manifest_id = (
    SELECT m.id FROM manifests m JOIN repositories r ON r.id = m.repository_id
    WHERE r.name = :repo AND m.digest = :digest
)"""
PENDING_JOBS = """UPDATE jobs SET attempts = attempts
WHERE kind = :kind AND ordering_key = :key AND state IN ('queued', 'running')"""
SUCCEEDED_JOBS = (
    """UPDATE jobs SET attempts = attempts WHERE kind = :kind AND ordering_key = :key AND state = 'succeeded'"""
)
REVERIFY = {"kind": "trust.reverify", "key": "trust.reverify:admin"}


# -- tests --------------------------------------------------------------------------------------------------------


def test_keyless_signatures_under_enforce(admin: httpx.Client) -> None:
    repo = unique_name("admin")
    enforced = time.monotonic()
    policy(admin, "enforce", repo)
    iid = add_identity(admin, TEAM)
    assert re.fullmatch(r"oidc-[0-9a-f]{16}", iid)
    listed = admin.get(IDENTITIES)
    assert listed.status_code == 200, listed.text
    assert iid in [i["identity_id"] for i in listed.json()["results"]]

    signer = "builder@team.example.test"
    signed = signed_image(admin, repo, "signed", identity=signer)
    message = push_image(admin, repo, "message-signed")
    push_bundle(admin, repo, message, FAKE.message_signature_bundle(message.manifest, identity=signer))
    stranger = signed_image(admin, repo, "stranger", identity="mallory@example.org")
    suffix = signed_image(admin, repo, "suffix", identity="builder@team.example.test.evil.example")
    other_issuer = signed_image(admin, repo, "other-issuer", identity=signer, issuer="https://accounts.evil.test")
    other_image = push_image(admin, repo, "other-image")
    push_bundle(admin, repo, other_image, FAKE.keyless_bundle(signed.digest, identity=signer))  # about another
    other_ca = push_image(admin, repo, "other-ca")
    certificate = FAKE.issue_certificate(signer, ca=FakeSigstore().ca)
    push_bundle(admin, repo, other_ca, FAKE.keyless_bundle(other_ca.digest, certificate=certificate))
    push_image(admin, repo, "unsigned")
    settled(lambda: refused(get(admin, repo, "unsigned")) and get(admin, repo, "signed").status_code == 200, enforced)
    for reference in ("signed", signed.digest, "message-signed"):
        response = get(admin, repo, reference)
        assert response.status_code == 200, response.text
        assert response.headers[VERIFIED] == "true"
    for tag in ("stranger", "suffix", "other-issuer", "other-image", "other-ca", "unsigned"):
        response = get(admin, repo, tag)
        assert refused(response), (tag, response.status_code, response.text)
        assert "trust policy" in response.json()["errors"][0]["message"]
    assert refused(get(admin, repo, stranger.digest))
    assert refused(get(admin, repo, suffix.digest))
    assert refused(get(admin, repo, other_issuer.digest))

    shown = tag_signatures(admin, repo, "signed")
    assert [(s["key_id"], s["verified"], s["identity"], s["format"]) for s in shown] == [(iid, True, signer, "bundle")]
    assert signer in shown[0]["reason"]
    assert shown[0]["signed_at"]
    assert [(s["key_id"], s["verified"]) for s in tag_signatures(admin, repo, "message-signed")] == [(iid, True)]
    strange = tag_signatures(admin, repo, "stranger")
    assert [(s["verified"], s["identity"], s["format"]) for s in strange] == [(False, "mallory@example.org", "bundle")]
    assert "not one the namespace trusts" in strange[0]["reason"]
    assert [s["verified"] for s in tag_signatures(admin, repo, "other-image")] == [False]

    deleted = time.monotonic()
    assert admin.delete(f"{IDENTITIES}/{iid}").status_code == 204
    settled(lambda: refused(get(admin, repo, "signed")), deleted, timeout=5)
    assert refused(get(admin, repo, "message-signed"))
    assert [s["verified"] for s in tag_signatures(admin, repo, "signed")] == [False]
    assert iid not in [i["identity_id"] for i in admin.get(IDENTITIES).json()["results"]]
    assert admin.delete(f"{IDENTITIES}/{iid}").status_code == 404
    policy(admin, "off", repo)


def test_adding_identities_checks_what_it_is_given(admin: httpx.Client) -> None:
    subject = r"checks@example\.test"
    for body in (
        {"issuer": ISSUER, "subject": "("},  # not a regular expression
        {"issuer": "accounts.example.test", "subject": subject},  # not a URL
        {"issuer": ISSUER, "subject": "a" * 513},
        {"issuer": ISSUER, "subject": ""},
        {"issuer": ISSUER},
    ):
        response = admin.post(IDENTITIES, json=body)
        assert response.status_code in (400, 422), (body, response.status_code, response.text)
    iid = add_identity(admin, subject)
    assert admin.post(IDENTITIES, json={"issuer": ISSUER, "subject": subject}).status_code == 409
    assert admin.delete(f"{IDENTITIES}/{iid}").status_code == 204
    assert admin.delete(f"{IDENTITIES}/oidc-0000000000000000").status_code == 404
    assert admin.delete(f"{IDENTITIES}/not-an-id").status_code in (404, 422)
    with httpx.Client(base_url=str(admin.base_url), timeout=30) as anonymous:
        assert anonymous.get(IDENTITIES).status_code == 401
        assert anonymous.post(IDENTITIES, json={"issuer": ISSUER, "subject": subject}).status_code == 401


def test_a_new_trusted_root_takes_effect_without_a_restart(admin: httpx.Client, trusted_root: Path) -> None:
    repo = unique_name("admin")
    enforced = time.monotonic()
    policy(admin, "enforce", repo)
    iid = add_identity(admin, r"rooted@example\.test")
    signed = signed_image(admin, repo, "signed", identity="rooted@example.test")
    settled(lambda: get(admin, repo, "signed").status_code == 200, enforced)
    original = trusted_root.read_bytes()

    def reason() -> str:
        return str(tag_signatures(admin, repo, "signed")[0]["reason"])

    try:
        trusted_root.write_bytes(b"{ not a trusted root")  # unreadable: keyless signatures are not verified
        wait_for(lambda: refused(get(admin, repo, signed.digest)) and "no Sigstore trusted root" in reason())
        trusted_root.write_bytes(FakeSigstore(name="other").trusted_root_json())  # another CA and other logs
        wait_for(lambda: refused(get(admin, repo, "signed")) and reason().startswith("keyless signature:"))
    finally:
        restored = time.monotonic()
        trusted_root.write_bytes(original)
    settled(lambda: get(admin, repo, "signed").status_code == 200, restored)
    assert admin.delete(f"{IDENTITIES}/{iid}").status_code == 204
    policy(admin, "off", repo)


def test_signatures_are_verified_before_anyone_pulls(admin: httpx.Client, server: DockyardServer) -> None:
    """Nothing here reads the image, its tags or its signatures through the server."""
    repo = unique_name("admin")
    add_identity(admin, r"eager@example\.test")
    added = time.monotonic()
    # The identity's re-verification of the namespace must not be what writes this image's check, and the job
    # runners' cached identities (up to CACHE_SECONDS old) must include the new one.
    wait_for(lambda: server.execute_sql(PENDING_JOBS, **REVERIFY) == 0)
    time.sleep(max(0.0, added + CACHE_SECONDS - time.monotonic()))
    image = push_image(admin, repo, "eager")
    unsigned = push_image(admin, repo, "unsigned")
    push_bundle(admin, repo, image, FAKE.keyless_bundle(image.digest, identity="eager@example.test"))

    wait_for(lambda: server.execute_sql(VERIFIED_CHECKS, repo=repo, digest=image.digest, yes=True) == 1, timeout=8)
    verify_job = {"kind": "trust.verify", "key": f"trust.verify:{repo}@{image.digest}"}
    # The job is marked succeeded in a transaction of its own, after the handler's (which wrote the check).
    wait_for(lambda: server.execute_sql(SUCCEEDED_JOBS, **verify_job) == 1, timeout=8)
    assert server.execute_sql(CHECKS, repo=repo, digest=unsigned.digest) == 0  # only signed images are checked ahead

    # A new trusted key re-verifies the namespace's signed images: the row is written again, with the new key set.
    wait_for(lambda: server.execute_sql(PENDING_JOBS, **REVERIFY) == 0)
    finished = server.execute_sql(SUCCEEDED_JOBS, **REVERIFY)
    assert server.execute_sql(MARK_CHECKS, repo=repo, digest=image.digest) == 1
    trust(admin, new_key(), "reverify")
    wait_for(lambda: server.execute_sql(SUCCEEDED_JOBS, **REVERIFY) > finished, timeout=8)
    assert server.execute_sql(REWRITTEN_CHECKS, repo=repo, digest=image.digest, yes=True) == 1
