"""Key-based Sigstore bundles (cosign v3's default signature) through a live server and the trust policy.

Each image gets an OCI 1.1 referrer laid out as cosign v3's ``WriteAttestationNewBundleFormat`` writes it
(``tests/unit/signing/cosign_layout.py``): artifact type ``application/vnd.dev.sigstore.bundle.v0.3+json``, one
layer holding the bundle — a DSSE envelope around an in-toto statement naming the image digest, signed here with
``cryptography`` (ECDSA P-256, P-384 with SHA-384, Ed25519 and Ed25519ph; and once as a message signature) and
serialized through the ``sigstore`` library's bundle model, which also checks that it is a well-formed bundle.
Under ``enforce`` an image with a verifying bundle is served, and the bundle stays readable; a tampered payload, a
statement about another digest, a truncated signature, an untrusted key, garbage in the bundle layer, a bundle over
1 MiB or a bundle blob lost from storage get ``403 DENIED`` naming the policy — never a 500. ``warn`` serves with
``Dockyard-Signature-Verified: false``; revoking the key refuses the image within seconds. Everything is pushed
once, on one server, before the tests run.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from sigstore_models.bundle.v1 import Bundle as SigstoreBundle

from tests.signing.helpers import VERIFIED, get, policy, tag_signatures, trust
from tests.support.checks import wait_for
from tests.support.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    PushedImage,
    error_codes,
    push_blob,
    push_image,
    sha256,
    unique_name,
)
from tests.support.server import DockyardServer
from tests.support.storage_view import StorageView
from tests.unit.signing.cosign_layout import (
    P256,
    SIGNERS,
    STRANGER,
    Repo,
    Signer,
    b64,
    bundle_manifest,
    dsse_bundle,
    hint,
    statement,
)

BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
CREATED = datetime(2026, 3, 8, 18, 18, 20, tzinfo=UTC)  # cosign_layout.bundle_manifest's creation annotation
P384 = next(s for s in SIGNERS if s.name == "ecdsa-p384")
ED25519 = next(s for s in SIGNERS if s.name == "ed25519")
REVOKED = Signer("revoked", ec.generate_private_key(ec.SECP384R1()))
TRUSTED = (P256, P384, ED25519, REVOKED)


# -- bundles ------------------------------------------------------------------------------------------------------


def signed(signer: Signer, digest: str, scheme: str = "default") -> dict[str, Any]:
    """``cosign sign --key`` of ``digest`` (``tlogEntries`` empty: ``--tlog-upload=false``, no Rekor here)."""
    return dsse_bundle(signer, statement(digest), scheme, tlogEntries=[])


def as_json(bundle: dict[str, Any]) -> bytes:
    """The bundle as sigstore's protobuf-specs model serializes it; fails unless it is a well-formed bundle."""
    return SigstoreBundle.from_json(json.dumps(bundle)).to_json().encode()


def envelope(bundle: dict[str, Any]) -> dict[str, Any]:
    dsse: dict[str, Any] = bundle["dsseEnvelope"]
    return dsse


def tampered(digest: str, other: str) -> list[bytes]:
    """Signed for ``other``, then the payload swapped for a statement about this image."""
    bundle = signed(P256, other)
    envelope(bundle)["payload"] = b64(statement(digest))
    return [as_json(bundle)]


def truncated(digest: str, _other: str) -> list[bytes]:
    bundle = signed(P256, digest)
    signature = base64.b64decode(envelope(bundle)["signatures"][0]["sig"])
    envelope(bundle)["signatures"][0]["sig"] = b64(signature[: len(signature) // 2])
    return [as_json(bundle)]


def hinting_at_another_key(digest: str, _other: str) -> list[bytes]:
    """The hint is unsigned metadata: it names P-384, the signature is P-256's."""
    bundle = signed(P256, digest)
    bundle["verificationMaterial"]["publicKey"]["hint"] = hint(P384)
    return [as_json(bundle)]


def message_signature(digest: str, _other: str) -> list[bytes]:
    """The bundle's other form: a signature over the image manifest's SHA-256, known only by that digest."""
    raw = bytes.fromhex(digest.removeprefix("sha256:"))
    key = P256.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signature = key.sign(raw, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    doc = {
        "mediaType": BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": hint(P256)}, "tlogEntries": []},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(raw)},
            "signature": b64(signature),
        },
    }
    return [as_json(doc)]


def garbage_fields(digest: str, _other: str) -> list[bytes]:
    doc = {
        "mediaType": BUNDLE,
        "verificationMaterial": {"publicKey": {"hint": "%%%"}, "tlogEntries": [{"integratedTime": "soon"}]},
        "dsseEnvelope": {
            "payload": b64(statement(digest)),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": "!!! not base64 !!!"}, {"sig": 42}, "sig", None],
        },
    }
    return [json.dumps(doc).encode()]


WRONG_SHAPES = json.dumps(
    {"mediaType": BUNDLE, "verificationMaterial": [], "dsseEnvelope": {"payload": 42, "signatures": "x"}}
).encode()
GARBAGE_ANNOTATIONS = {
    "org.opencontainers.image.created": "the day before yesterday",
    "dev.sigstore.bundle.content": "\u0000\U0001f4a5",
    "dev.sigstore.bundle.predicateType": "x" * 4096,
}

# Tag → the bundle blobs pushed as referrers of that image (one referrer each), given (its digest, another digest).
Bundles = Callable[[str, str], list[bytes]]
GOOD: dict[str, tuple[Signer, Bundles]] = {
    "ecdsa-p256": (P256, lambda d, _: [as_json(signed(P256, d))]),
    "ecdsa-p384-sha384": (P384, lambda d, _: [as_json(signed(P384, d, "curve-hash"))]),
    "ed25519": (ED25519, lambda d, _: [as_json(signed(ED25519, d))]),
    "ed25519ph": (ED25519, lambda d, _: [as_json(signed(ED25519, d, "ph"))]),
    "hint-of-another-key": (P256, hinting_at_another_key),
    "message-signature": (P256, message_signature),
    "beside-bad-bundles": (P256, lambda d, o: [b"{broken", as_json(signed(P256, d)), as_json(signed(P256, o))]),
}
BAD: dict[str, Bundles] = {
    "tampered-payload": tampered,
    "statement-about-another-digest": lambda d, o: [as_json(signed(P256, o))],
    "truncated-signature": truncated,
    "untrusted-key": lambda d, _: [as_json(signed(STRANGER, d))],
    "not-json": lambda d, _: [b'{"mediaType": "' + BUNDLE.encode() + b'", "dsseEnvelope": {'],
    "wrong-shapes": lambda d, _: [WRONG_SHAPES],
    "deeply-nested": lambda d, _: [b"[" * 100_000 + b"]" * 100_000],
    "not-utf8": lambda d, _: [b'{"mediaType": "\xff\xfe"}'],
    "garbage-fields-and-annotations": garbage_fields,
    "larger-than-1-mib": lambda d, _: [as_json(signed(P256, d)) + b" " * 1024 * 1024],  # valid, but too big to read
    "blob-lost-from-storage": lambda d, _: [as_json(signed(P256, d))],
}
ANNOTATIONS = {"hint-of-another-key": GARBAGE_ANNOTATIONS, "garbage-fields-and-annotations": GARBAGE_ANNOTATIONS}
LOST = "blob-lost-from-storage"


# -- the registry -------------------------------------------------------------------------------------------------


def push_bundles(
    client: httpx.Client,
    repo: str,
    image: PushedImage,
    blobs: list[bytes],
    annotations: dict[str, str] | None = None,
    before_manifest: Callable[[str], None] | None = None,
) -> list[str]:
    """Push each blob as a bundle referrer of ``image`` (the empty config ``{}`` is already there); the referrers'
    digests. ``before_manifest`` gets each blob's digest once it is pushed, before its manifest is."""
    subject = {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)}
    digests = []
    for data in blobs:
        extra: dict[str, Any] = {"subject": subject}
        if annotations is not None:
            extra["annotations"] = annotations
        manifest = bundle_manifest(Repo(), data, **extra)
        push_blob(client, repo, data)
        if before_manifest is not None:
            before_manifest(sha256(data))
        response = client.put(
            f"/v2/{repo}/manifests/{sha256(manifest)}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        assert response.status_code == 201, response.text
        digests.append(sha256(manifest))
    return digests


def lose_blob(server: DockyardServer, digest: str) -> None:
    StorageView(server).lose_blob(digest)


@dataclass
class World:
    enforce: str  # repositories, with their policies
    warn: str
    revoke: str
    images: dict[str, PushedImage]  # tag in ``enforce`` → image
    referrers: dict[str, list[str]]  # tag → its bundle manifests
    blobs: dict[str, list[bytes]]  # tag → its bundle blobs
    key_ids: dict[str, str]  # signer name → key id


@pytest.fixture(scope="module")
def world(server: DockyardServer, admin: httpx.Client) -> World:
    key_ids = {signer.name: trust(admin, signer.key, signer.name) for signer in TRUSTED}
    assert key_ids == {signer.name: signer.id for signer in TRUSTED}  # the id cosign's hint carries
    w = World(unique_name("admin"), unique_name("admin"), unique_name("admin"), {}, {}, {}, key_ids)
    for repo in (w.enforce, w.warn, w.revoke):
        push_blob(admin, repo, b"{}")  # the bundle manifests' empty config
    other = push_image(admin, w.enforce, "other")
    push_image(admin, w.enforce, "unsigned")

    def push_case(tag: str, make: Bundles) -> None:
        image = w.images[tag] = push_image(admin, w.enforce, tag)
        w.blobs[tag] = make(image.digest, other.digest)
        # The lost blob goes before its manifest arrives: signatures are verified as soon as they are pushed.
        lose = partial(lose_blob, server) if tag == LOST else None
        w.referrers[tag] = push_bundles(admin, w.enforce, image, w.blobs[tag], ANNOTATIONS.get(tag), lose)

    def push_signed(repo: str, tag: str, signer: Signer, scheme: str) -> None:
        image = push_image(admin, repo, tag)
        push_bundles(admin, repo, image, [as_json(signed(signer, image.digest, scheme))])

    with ThreadPoolExecutor(4) as pool:  # pushes wait on the database and storage more than on the CPU
        done = [
            pool.submit(push_case, tag, make) for tag, make in {**{t: m for t, (_, m) in GOOD.items()}, **BAD}.items()
        ]
        done.append(pool.submit(push_signed, w.warn, "unverified", STRANGER, "default"))
        done.append(pool.submit(push_signed, w.warn, "verified", P256, "default"))
        done.append(pool.submit(push_signed, w.revoke, "v1", REVOKED, "curve-hash"))
        for future in done:
            future.result()
    policy(admin, "enforce", w.enforce)
    policy(admin, "enforce", w.revoke)
    policy(admin, "warn", w.warn)
    # Policies last: no pull has read them before, so no worker holds a stale one; wait for the first pulls.
    wait_for(lambda: get(admin, w.enforce, "unsigned").status_code == 403)
    wait_for(lambda: get(admin, w.warn, "unverified").headers.get(VERIFIED) == "false")
    return w


def referrers(client: httpx.Client, repo: str, digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
    params = {"artifactType": artifact_type} if artifact_type else {}
    response = client.get(f"/v2/{repo}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OCI_INDEX
    manifests: list[dict[str, Any]] = response.json()["manifests"]
    return manifests


def assert_readable(client: httpx.Client, w: World, tag: str, *, lost: bool = False) -> None:
    """The bundle referrers of ``tag`` and their blobs can be fetched, whatever the policy."""
    for digest, blob in zip(w.referrers[tag], w.blobs[tag], strict=True):
        response = get(client, w.enforce, digest)
        assert response.status_code == 200, response.text
        assert sha256(response.content) == digest
        if not lost:
            fetched = client.get(f"/v2/{w.enforce}/blobs/{sha256(blob)}")
            assert fetched.status_code == 200
            assert fetched.content == blob


# -- tests --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", list(GOOD))
def test_bundle_signed_images_are_served_under_enforce(admin: httpx.Client, world: World, tag: str) -> None:
    signer = GOOD[tag][0]
    image = world.images[tag]
    for reference in (tag, image.digest):
        response = get(admin, world.enforce, reference)
        assert response.status_code == 200, response.text
        assert response.headers[VERIFIED] == "true"
        assert response.headers["docker-content-digest"] == image.digest

    shown = tag_signatures(admin, world.enforce, tag)
    assert {s["format"] for s in shown} == {"bundle"}
    assert len(shown) == len(world.referrers[tag])
    verified = [s for s in shown if s["verified"]]
    assert [s["key_id"] for s in verified] == [world.key_ids[signer.name]]
    claimed = verified[0]["signed_at"]
    if tag in ANNOTATIONS:  # an unparseable creation time is no time at all
        assert claimed is None
    else:
        assert datetime.fromisoformat(claimed) == CREATED

    listed = referrers(admin, world.enforce, image.digest)
    assert sorted(m["digest"] for m in listed) == sorted(world.referrers[tag])
    for entry in listed:
        assert entry["mediaType"] == OCI_MANIFEST
        assert entry["artifactType"] == BUNDLE
        assert entry["annotations"]["dev.sigstore.bundle.content"]
    assert referrers(admin, world.enforce, image.digest, BUNDLE) == listed
    assert referrers(admin, world.enforce, image.digest, "application/vnd.dev.cosign.artifact.sig.v1+json") == []
    assert_readable(admin, world, tag)


@pytest.mark.parametrize("tag", list(BAD))
def test_bad_bundles_are_refused_and_never_a_500(admin: httpx.Client, world: World, tag: str) -> None:
    image = world.images[tag]
    for reference in (tag, image.digest):
        response = get(admin, world.enforce, reference)
        assert response.status_code == 403, response.text
        assert error_codes(response) == ["DENIED"]
        message = response.json()["errors"][0]["message"]
        assert "trust policy" in message
        assert "enforce" in message
        assert image.digest in message
        assert VERIFIED not in response.headers

    shown = tag_signatures(admin, world.enforce, tag)
    assert len(shown) >= len(world.referrers[tag])  # one per DSSE signature, at least one per referrer
    assert {(s["format"], s["verified"]) for s in shown} == {("bundle", False)}
    assert [m["digest"] for m in referrers(admin, world.enforce, image.digest)] == world.referrers[tag]
    assert_readable(admin, world, tag, lost=tag == LOST)
    # The server is still well: the next pull of a signed image works.
    assert get(admin, world.enforce, "ecdsa-p256").status_code == 200
    assert admin.get("/v2/").status_code == 200


def test_warn_serves_unverified_bundles_with_a_header(admin: httpx.Client, world: World) -> None:
    warned = get(admin, world.warn, "unverified")
    assert warned.status_code == 200, warned.text
    assert warned.headers[VERIFIED] == "false"
    assert [(s["format"], s["verified"]) for s in tag_signatures(admin, world.warn, "unverified")] == [
        ("bundle", False)
    ]
    signed_ok = get(admin, world.warn, "verified")
    assert signed_ok.status_code == 200
    assert signed_ok.headers[VERIFIED] == "true"


def test_revoking_the_key_refuses_bundle_signed_images(admin: httpx.Client, world: World) -> None:
    key_id = world.key_ids[REVOKED.name]
    assert get(admin, world.revoke, "v1").status_code == 200
    assert [(s["key_id"], s["verified"]) for s in tag_signatures(admin, world.revoke, "v1")] == [(key_id, True)]

    assert admin.delete(f"/api/v2/namespaces/admin/trusted-keys/{key_id}").status_code == 204
    wait_for(lambda: get(admin, world.revoke, "v1").status_code == 403, timeout=5)
    refused = get(admin, world.revoke, "v1")
    assert error_codes(refused) == ["DENIED"]
    assert [s["verified"] for s in tag_signatures(admin, world.revoke, "v1")] == [False]
    # The other keys still count.
    assert get(admin, world.enforce, "ecdsa-p256").status_code == 200


def test_deleting_the_bundle_blob_unverifies_the_image(admin: httpx.Client, world: World) -> None:
    """A signature whose bundle blob was deleted from the repository (``DELETE /v2/…/blobs/…``) is one no client
    can fetch to verify: the image it signed is no longer verified."""
    image = push_image(admin, world.revoke, "blob-deleted")
    bundle = as_json(signed(P256, image.digest))
    push_bundles(admin, world.revoke, image, [bundle])
    wait_for(lambda: get(admin, world.revoke, "blob-deleted").status_code == 200, timeout=5)
    assert admin.delete(f"/v2/{world.revoke}/blobs/{sha256(bundle)}").status_code == 202
    wait_for(lambda: get(admin, world.revoke, "blob-deleted").status_code == 403, timeout=5)
    assert [s["verified"] for s in tag_signatures(admin, world.revoke, "blob-deleted")] == [False]
