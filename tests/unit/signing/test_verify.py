"""Signature verification: cosign's tag scheme, OCI 1.1 referrers and Sigstore bundles, built by hand as cosign lays
them out (``cosign_layout``) and signed here for every accepted key type; tampering and garbage are "not verified"
with a reason, never an exception."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import nacl.bindings
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa, utils

from dockyard.core import mediatypes as mt
from dockyard.signing import formats as f
from dockyard.signing.keys import PrivateKey, PublicKey
from dockyard.signing.verify import MAX_SIGNATURES, verify_signature_manifest
from tests.unit.signing.cosign_layout import (
    OTHER,
    P256,
    SIGNERS,
    STRANGER,
    SUBJECT,
    Repo,
    Signer,
    b64,
    bundle_manifest,
    cosign_manifest,
    dsse_bundle,
    hint,
    only,
    sig_layer,
    sign,
    signed_layer,
    simple_signing,
    statement,
    verify,
)

# -- valid signatures ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signer", SIGNERS, ids=lambda s: s.name)
@pytest.mark.parametrize("mode", ["cosign", "referrer"])
def test_simple_signing_verifies_for_every_key_type(signer: Signer, mode: str) -> None:
    repo = Repo()
    result = only(verify(repo, cosign_manifest(repo, [signed_layer(repo, signer)], mode), signer.trusted))
    assert (result.verified, result.key_id, result.format) == (True, signer.id, mode), result.reason


@pytest.mark.parametrize("signer", SIGNERS, ids=lambda s: s.name)
def test_dsse_bundle_verifies_for_every_key_type(signer: Signer) -> None:
    repo = Repo()
    result = only(verify(repo, bundle_manifest(repo, dsse_bundle(signer)), signer.trusted))
    assert (result.verified, result.key_id, result.format) == (True, signer.id, "bundle"), result.reason
    assert result.signed_at == datetime(2026, 3, 8, 18, 18, 20, tzinfo=UTC)  # the referrer's created annotation


@pytest.mark.parametrize(
    ("name", "scheme"), [("ecdsa-p384", "curve-hash"), ("ed25519", "ph"), ("rsa-2048", "pss")], ids=str
)
def test_other_schemes_cosign_versions_use(name: str, scheme: str) -> None:
    signer = next(s for s in SIGNERS if s.name == name)
    repo = Repo()
    classic = only(verify(repo, cosign_manifest(repo, [signed_layer(repo, signer, scheme=scheme)]), signer.trusted))
    bundled = only(verify(repo, bundle_manifest(repo, dsse_bundle(signer, scheme=scheme)), signer.trusted))
    assert classic.verified, classic.reason
    assert bundled.verified, bundled.reason


def test_ed25519ph_matches_rfc8032() -> None:
    """RFC 8032 §7.3 (Ed25519ph, message "abc"): what Go's ``ed25519`` with SHA-512 pre-hashing, and so cosign,
    produce — pins libsodium's variant to the one cosign writes."""
    public = ed25519.Ed25519PublicKey.from_public_bytes(
        bytes.fromhex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf")
    )
    signature = bytes.fromhex(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
        "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
    )
    state = nacl.bindings.crypto_sign_ed25519ph_state()
    nacl.bindings.crypto_sign_ed25519ph_update(state, b"abc")
    assert nacl.bindings.crypto_sign_ed25519ph_final_verify(state, signature, public.public_bytes_raw())


def test_skopeo_payload_timestamp_and_rekor_bundle() -> None:
    repo = Repo()
    payload = simple_signing(optional={"creator": "containers/image 5.36", "timestamp": 1_700_000_000})
    layer = signed_layer(repo, P256, payload)
    rekor = {"SignedEntryTimestamp": "MEUCIQ==", "Payload": {"body": "e30=", "integratedTime": 1_600_000_000}}
    layer["annotations"][f.ANNOTATION_BUNDLE] = json.dumps(rekor)
    result = only(verify(repo, cosign_manifest(repo, [layer]), P256.trusted))
    assert result.verified
    assert result.rekor_bundle
    assert "not checked" in result.reason
    assert result.signed_at == datetime.fromtimestamp(1_700_000_000, UTC)  # the signed time wins


def test_rekor_time_when_the_payload_has_none() -> None:
    repo = Repo()
    layer = signed_layer(repo, P256)
    layer["annotations"][f.ANNOTATION_BUNDLE] = json.dumps({"Payload": {"integratedTime": 1_600_000_000}})
    result = only(verify(repo, cosign_manifest(repo, [layer]), P256.trusted))
    assert result.signed_at == datetime.fromtimestamp(1_600_000_000, UTC)


def test_bundle_tlog_entry_time_as_protobuf_json_writes_it() -> None:
    repo = Repo()
    bundle = dsse_bundle(P256, tlogEntries=[{"logIndex": "7", "integratedTime": "1700000000"}])
    result = only(verify(repo, bundle_manifest(repo, bundle), P256.trusted))
    assert result.verified
    assert result.rekor_bundle
    assert result.signed_at == datetime.fromtimestamp(1_700_000_000, UTC)


def test_several_signatures_each_get_a_verdict() -> None:
    repo = Repo()
    layers = [signed_layer(repo, STRANGER), signed_layer(repo, SIGNERS[2])]
    results = verify(repo, cosign_manifest(repo, layers), {**P256.trusted, **SIGNERS[2].trusted})
    assert [r.verified for r in results] == [False, True]
    assert results[1].key_id == SIGNERS[2].id


def test_message_signature_over_the_manifest_digest() -> None:
    repo = Repo()
    digest = bytes.fromhex(SUBJECT.removeprefix("sha256:"))
    for signer in (P256, SIGNERS[3]):
        if isinstance(signer.key, ec.EllipticCurvePrivateKey):
            signature = signer.key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        else:
            assert isinstance(signer.key, rsa.RSAPrivateKey)
            signature = signer.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        bundle: dict[str, Any] = {
            "mediaType": f.SIGSTORE_BUNDLE_V03,
            "verificationMaterial": {"publicKey": {"hint": hint(signer)}},
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
                "signature": b64(signature),
            },
        }
        assert only(verify(repo, bundle_manifest(repo, bundle), signer.trusted)).verified
        bundle["messageSignature"]["messageDigest"]["digest"] = b64(hashlib.sha256(simple_signing()).digest())
        result = only(verify(repo, bundle_manifest(repo, bundle), signer.trusted))
        assert not result.verified
        assert "not over the image manifest" in result.reason


# -- tampering and garbage: not verified, with a reason, never an exception ----------------------------------------


def layer_case(name: str) -> tuple[Repo, bytes, dict[str, PublicKey]]:
    repo = Repo()
    payload = simple_signing()
    signature = sign(P256.key, payload)
    keys = P256.trusted
    if name == "tampered payload":
        layer = sig_layer(repo, payload.replace(b"registry.test", b"evil.test"), b64(signature))
    elif name == "payload for another image":
        layer = signed_layer(repo, P256, simple_signing(OTHER))
    elif name == "truncated signature":
        layer = sig_layer(repo, payload, b64(signature[:-3]))
    elif name == "wrong key":
        layer = signed_layer(repo, STRANGER)
    elif name == "garbage base64":
        layer = sig_layer(repo, payload, "!!not*base64!!")
    elif name == "non-ascii base64":
        layer = sig_layer(repo, payload, "MEUC\u00e9Q==")
    elif name == "missing annotation":
        layer = sig_layer(repo, payload, None)
    elif name == "non-JSON payload":
        layer = signed_layer(repo, P256, b"\x00not json\xff")
    elif name == "JSON that is not an object":
        layer = signed_layer(repo, P256, b'["sha256:x"]')
    elif name == "duplicate digest key":
        dup = simple_signing().replace(b'"image":{', b'"image":{"docker-manifest-digest":"' + OTHER.encode() + b'",')
        layer = signed_layer(repo, P256, dup)
    elif name == "wrong payload type":
        layer = signed_layer(repo, P256, simple_signing().replace(b"cosign container image", b"atomic container"))
    elif name == "untrusted ECDSA key, Ed25519 trusted":
        layer, keys = signed_layer(repo, P256), SIGNERS[2].trusted
    elif name == "no trusted keys":
        layer, keys = signed_layer(repo, P256), {}
    elif name == "wrong layer media type":
        layer = {**signed_layer(repo, P256), "mediaType": "application/vnd.dsse.envelope.v1+json"}
    elif name == "missing blob":
        layer = signed_layer(repo, P256)
        repo.blobs.clear()
    elif name == "blob does not match its digest":
        layer = signed_layer(repo, P256)
        repo.blobs[layer["digest"]] = simple_signing(OTHER)
    else:
        raise AssertionError(name)
    return repo, cosign_manifest(repo, [layer]), keys


LAYER_CASES = {
    "tampered payload": "does not verify",
    "payload for another image": "is for",
    "truncated signature": "does not verify",
    "wrong key": "does not verify",
    "garbage base64": "not valid base64",
    "non-ascii base64": "not valid base64",
    "missing annotation": "no dev.cosignproject.cosign/signature annotation",
    "non-JSON payload": "not valid JSON",
    "JSON that is not an object": "not a JSON object",
    "duplicate digest key": "duplicate key",
    "wrong payload type": "not 'cosign container image signature'",
    "untrusted ECDSA key, Ed25519 trusted": "does not verify",
    "no trusted keys": "does not verify",
    "wrong layer media type": "not a simple-signing payload",
    "missing blob": "is missing",
    "blob does not match its digest": "does not match",
}


@pytest.mark.parametrize(("name", "reason"), LAYER_CASES.items(), ids=list(LAYER_CASES))
def test_bad_simple_signing_is_not_verified(name: str, reason: str) -> None:
    repo, manifest, keys = layer_case(name)
    result = only(verify(repo, manifest, keys))
    assert not result.verified
    assert reason in result.reason, result.reason


def test_a_valid_signature_over_the_wrong_image_names_its_key() -> None:
    repo, manifest, keys = layer_case("payload for another image")
    assert only(verify(repo, manifest, keys)).key_id == P256.id


@pytest.mark.parametrize(
    "weak",
    [
        rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 — weak on purpose
        ec.generate_private_key(ec.SECP521R1()),
        ec.generate_private_key(ec.SECP256K1()),
    ],
    ids=["rsa-1024", "ecdsa-p521", "secp256k1"],
)
def test_keys_of_unaccepted_types_never_verify(weak: PrivateKey) -> None:
    repo = Repo()
    manifest = cosign_manifest(repo, [signed_layer(repo, Signer("weak", weak))])
    result = only(verify(repo, manifest, {"weak": weak.public_key()}))
    assert not result.verified
    assert "does not verify" in result.reason


def test_objects_that_are_not_keys_are_ignored() -> None:
    repo = Repo()
    manifest = cosign_manifest(repo, [signed_layer(repo, P256)])
    odd: dict[str, Any] = {"dsa": dsa.generate_private_key(2048).public_key(), "text": "not a key", **P256.trusted}
    assert only(verify(repo, manifest, odd)).verified


def test_oversized_payload_is_never_read() -> None:
    repo = Repo()
    payload = simple_signing(optional={"pad": "x" * f.MAX_PAYLOAD_BYTES})
    result = only(verify(repo, cosign_manifest(repo, [signed_layer(repo, P256, payload)]), P256.trusted))
    assert not result.verified
    assert "larger than 64 KiB" in result.reason
    assert all(size <= f.MAX_PAYLOAD_BYTES for _, size in repo.asked)


def test_oversized_bundle_is_never_read() -> None:
    repo = Repo()
    big = json.dumps({**dsse_bundle(P256), "pad": "x" * f.MAX_BUNDLE_BYTES}).encode()
    result = only(verify(repo, bundle_manifest(repo, big), P256.trusted))
    assert not result.verified
    assert "larger than 1024 KiB" in result.reason
    assert repo.asked == []


def test_a_reader_returning_more_than_the_descriptor_says_is_refused() -> None:
    repo = Repo()
    manifest = cosign_manifest(repo, [signed_layer(repo, P256)])
    result = only(verify_signature_manifest(manifest, mt.OCI_MANIFEST, SUBJECT, lambda d, s: b"x" * 10**6, {}))
    assert not result.verified
    assert "does not match" in result.reason


def bundle_case(name: str) -> tuple[Repo, bytes, dict[str, PublicKey]]:
    repo = Repo()
    bundle: dict[str, Any] | bytes = dsse_bundle(P256)
    assert isinstance(bundle, dict)
    keys = P256.trusted
    envelope = bundle["dsseEnvelope"]
    if name == "tampered statement":
        envelope["payload"] = b64(statement(OTHER))
    elif name == "statement for another image":
        bundle = dsse_bundle(P256, statement(OTHER))
    elif name == "attestation, not a signature":
        bundle = dsse_bundle(P256, statement(predicate_type="https://slsa.dev/provenance/v1"))
    elif name == "not in-toto":
        bundle = dsse_bundle(P256, payload_type="text/plain")
    elif name == "wrong key":
        bundle = dsse_bundle(STRANGER)
    elif name == "truncated signature":
        envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][:-8]
    elif name == "garbage signature":
        envelope["signatures"][0]["sig"] = "%%%%"
    elif name == "no signatures":
        envelope["signatures"] = []
    elif name == "keyless":
        bundle["verificationMaterial"] = {"certificate": {"rawBytes": b64(b"0\x82")}}
    elif name == "no key material":
        bundle["verificationMaterial"] = {}
    elif name == "both contents":
        bundle["messageSignature"] = {}
    elif name == "unknown media type":
        bundle["mediaType"] = "application/json"
    elif name == "not JSON":
        bundle = b"\xef\xbb\xbf{{{"
    elif name == "statement not JSON":
        bundle = dsse_bundle(P256, b"not json")
    else:
        raise AssertionError(name)
    return repo, bundle_manifest(repo, bundle), keys


BUNDLE_CASES = {
    "tampered statement": "does not verify",
    "statement for another image": "subject is not",
    "attestation, not a signature": "attestation",
    "not in-toto": "not in-toto",
    "wrong key": "does not verify",
    "truncated signature": "does not verify",
    "garbage signature": "not valid base64",
    "no signatures": "no signatures",
    "keyless": "trusted root",
    "no key material": "neither a public key nor a certificate",
    "both contents": "exactly one",
    "unknown media type": "not a Sigstore bundle",
    "not JSON": "not valid JSON",
    "statement not JSON": "not valid JSON",
}


@pytest.mark.parametrize(("name", "reason"), BUNDLE_CASES.items(), ids=list(BUNDLE_CASES))
def test_bad_bundles_are_not_verified(name: str, reason: str) -> None:
    repo, manifest, keys = bundle_case(name)
    result = only(verify(repo, manifest, keys))
    assert (result.verified, result.format) == (False, "bundle")
    assert reason in result.reason, result.reason


def test_bundle_hint_names_the_claimed_key_when_untrusted() -> None:
    repo = Repo()
    result = only(verify(repo, bundle_manifest(repo, dsse_bundle(STRANGER)), P256.trusted))
    assert (result.verified, result.key_id) == (False, STRANGER.id)


MANIFEST_CASES: dict[str, tuple[Callable[[Repo], bytes], str, str]] = {
    "subject elsewhere": (lambda r: bundle_manifest(r, dsse_bundle(P256)), OTHER, "subject is"),
    "index": (lambda r: json.dumps({"schemaVersion": 2, "manifests": []}).encode(), SUBJECT, "an index is not"),
    "not JSON": (lambda r: b"\x89PNG", SUBJECT, "not a valid signature manifest"),
    "deeply nested": (lambda r: b"[" * 100_000, SUBJECT, "not a valid signature manifest"),
    "bad subject digest": (lambda r: cosign_manifest(r, []), "sha256:xyz", "not a valid signature manifest"),
    "no layers": (lambda r: cosign_manifest(r, []), SUBJECT, "no layers"),
    "non-string annotation": (
        lambda r: cosign_manifest(r, [{**signed_layer(r, P256), "annotations": {f.ANNOTATION_SIGNATURE: 5}}]),
        SUBJECT,
        "annotations must map strings to strings",
    ),
}


@pytest.mark.parametrize(("build", "subject", "reason"), MANIFEST_CASES.values(), ids=list(MANIFEST_CASES))
def test_bad_manifests_are_not_verified(build: Callable[[Repo], bytes], subject: str, reason: str) -> None:
    repo = Repo()
    media_type = mt.OCI_INDEX if reason.startswith("an index") else mt.OCI_MANIFEST
    result = only(verify(repo, build(repo), P256.trusted, subject, media_type))
    assert not result.verified
    assert reason in result.reason


def test_too_many_layers_are_capped() -> None:
    repo = Repo()
    layers = [signed_layer(repo, P256)] * (MAX_SIGNATURES + 5)
    results = verify(repo, cosign_manifest(repo, layers), P256.trusted)
    assert len(results) == MAX_SIGNATURES + 1
    assert "5 more layers" in results[-1].reason


def test_storage_errors_propagate() -> None:
    repo = Repo()
    manifest = cosign_manifest(repo, [signed_layer(repo, P256)])

    def broken(digest: str, size: int) -> bytes | None:
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        verify_signature_manifest(manifest, mt.OCI_MANIFEST, SUBJECT, broken, P256.trusted)
