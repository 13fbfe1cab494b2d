"""Property tests: whatever bytes reach the verifier — as the manifest, as a validly signed payload or statement, as
a bundle — it answers with verdicts, never an exception, and never through its fail-closed catch-all."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.core import mediatypes as mt
from dockyard.signing import formats as f
from dockyard.signing.verify import VerificationResult, verify_signature_manifest
from tests.unit.signing.cosign_layout import (
    P256,
    SUBJECT,
    Repo,
    b64,
    bundle_manifest,
    cosign_manifest,
    dsse_bundle,
    sig_layer,
    sign,
    signed_layer,
    simple_signing,
)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = st.sampled_from(
    [
        "schemaVersion",
        "mediaType",
        "artifactType",
        "config",
        "layers",
        "subject",
        "annotations",
        "digest",
        "size",
        "critical",
        "optional",
        "image",
        "identity",
        "type",
        "docker-manifest-digest",
        "Docker-manifest-digest",
        "timestamp",
        "verificationMaterial",
        "publicKey",
        "hint",
        "certificate",
        "tlogEntries",
        "integratedTime",
        "dsseEnvelope",
        "payload",
        "payloadType",
        "signatures",
        "sig",
        "messageSignature",
        "messageDigest",
        "algorithm",
        "signature",
        "_type",
        "predicateType",
        "predicate",
        "sha256",
        "Payload",
        f.ANNOTATION_SIGNATURE,
        f.ANNOTATION_BUNDLE,
        f.ANNOTATION_CERTIFICATE,
        f.ANNOTATION_CREATED,
    ]
) | st.text(max_size=6)
WORDS = st.sampled_from(
    [
        SUBJECT,
        SUBJECT.upper(),
        "sha256:",
        "sha512:" + "0" * 128,
        f.SIMPLE_SIGNING,
        f.SIGSTORE_BUNDLE_V03,
        f.COSIGN_SIG_ARTIFACT,
        f.IN_TOTO,
        f.COSIGN_SIGN_PREDICATE,
        f.SIMPLE_SIGNING_TYPE,
        "SHA2_256",
        "SHA2_512",
        "https://in-toto.io/Statement/v1",
        mt.OCI_MANIFEST,
        mt.OCI_INDEX,
        "MEUCIQ==",
        "AAAA",
        "=",
        "1700000000",
        "9" * 40,
        "2024-03-08T18:18:20Z",
        "",
        "\u0000",
        "\ud7ff",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | WORDS
)
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=6), max_leaves=12
)
OBJECTS = st.dictionaries(NAMES, JSON, max_size=5)
MEDIA_TYPES = st.sampled_from([mt.OCI_MANIFEST, mt.DOCKER_MANIFEST, mt.OCI_INDEX, "application/json", "", "x/y"])


def check(results: list[VerificationResult]) -> list[VerificationResult]:
    assert results
    for result in results:
        assert isinstance(result, VerificationResult)
        assert result.reason
        assert "internal error" not in result.reason, result
    return results


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(manifest=st.binary(max_size=2048), media_type=MEDIA_TYPES)
def test_random_bytes_as_manifest(manifest: bytes, media_type: str) -> None:
    assert not any(r.verified for r in check(verify_signature_manifest(manifest, media_type, SUBJECT, Repo().read, {})))


@FUZZ
@given(doc=OBJECTS, media_type=MEDIA_TYPES, blob=st.binary(max_size=256))
def test_random_json_as_manifest(doc: dict[str, Any], media_type: str, blob: bytes) -> None:
    results = verify_signature_manifest(dumps(doc), media_type, SUBJECT, lambda d, s: blob, P256.trusted)
    assert not any(r.verified for r in check(results))


@FUZZ
@given(layer=st.dictionaries(NAMES, JSON, max_size=6), extra=OBJECTS)
def test_random_layers_and_annotations(layer: dict[str, Any], extra: dict[str, Any]) -> None:
    repo = Repo()
    valid = signed_layer(repo, P256)
    annotations = {str(k): v for k, v in layer.items() if isinstance(v, str)}
    layers = [{**valid, **layer}, {**valid, "annotations": {**valid["annotations"], **annotations}}]
    manifest = cosign_manifest(repo, layers, **{k: v for k, v in extra.items() if k not in {"layers"}})
    check(verify_signature_manifest(manifest, mt.OCI_MANIFEST, SUBJECT, repo.read, P256.trusted))


@FUZZ
@given(doc=OBJECTS, critical=OBJECTS, raw=st.binary(max_size=200))
def test_validly_signed_random_payloads(doc: dict[str, Any], critical: dict[str, Any], raw: bytes) -> None:
    repo = Repo()
    base = json.loads(simple_signing())
    payloads = [dumps(doc), dumps({**base, **doc}), dumps({**base, "critical": {**base["critical"], **critical}}), raw]
    layers = [sig_layer(repo, payload, b64(sign(P256.key, payload))) for payload in payloads]
    results = check(
        verify_signature_manifest(cosign_manifest(repo, layers), mt.OCI_MANIFEST, SUBJECT, repo.read, P256.trusted)
    )
    assert len(results) == len(payloads)


_VALID_BUNDLE = dsse_bundle(P256)


@FUZZ
@given(top=OBJECTS, material=OBJECTS, envelope=OBJECTS, statement=OBJECTS)
def test_random_bundles(
    top: dict[str, Any], material: dict[str, Any], envelope: dict[str, Any], statement: dict[str, Any]
) -> None:
    repo = Repo()
    valid = _VALID_BUNDLE
    signed = dsse_bundle(P256, dumps(statement))  # a random statement, validly signed
    bundles = [
        top,
        {**valid, **top},
        {**valid, "verificationMaterial": {**valid["verificationMaterial"], **material}},
        {**valid, "dsseEnvelope": {**valid["dsseEnvelope"], **envelope}},
        {**valid, "messageSignature": envelope, "dsseEnvelope": None} | top,
        signed,
    ]
    for bundle in bundles:
        manifest = bundle_manifest(repo, dumps(bundle))
        check(verify_signature_manifest(manifest, mt.OCI_MANIFEST, SUBJECT, repo.read, P256.trusted))


# Signatures are randomised: build the originals once so that Hypothesis replays the same bytes.
_MUTABLE = Repo()
_ORIGINALS = [
    cosign_manifest(_MUTABLE, [signed_layer(_MUTABLE, P256)]),
    cosign_manifest(_MUTABLE, [signed_layer(_MUTABLE, P256)], "referrer"),
    bundle_manifest(_MUTABLE, dsse_bundle(P256)),
]


@FUZZ
@given(data=st.data())
def test_mutated_valid_manifests(data: st.DataObject) -> None:
    manifest = bytearray(data.draw(st.sampled_from(_ORIGINALS)))
    for _ in range(data.draw(st.integers(1, 8))):
        manifest[data.draw(st.integers(0, len(manifest) - 1))] = data.draw(st.integers(0, 255))
    check(verify_signature_manifest(bytes(manifest), mt.OCI_MANIFEST, SUBJECT, _MUTABLE.read, P256.trusted))
