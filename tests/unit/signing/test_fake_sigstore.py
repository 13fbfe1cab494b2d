"""The fake Sigstore (``tests/support/fake_sigstore.py``) against the real verifier: sigstore-python accepts its
trusted root and its keyless bundles, and refuses every broken variant — so tests of Dockyard's keyless
verification built on it test something real."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.certificate_transparency import LogEntryType
from sigstore.errors import CertValidationError, VerificationError
from sigstore.models import Bundle, InvalidBundle, TrustedRoot
from sigstore.verify import Verifier, policy

from tests.support.fake_sigstore import (
    COSIGN_SIGN_PREDICATE,
    IDENTITY,
    IN_TOTO_PAYLOAD_TYPE,
    ISSUER,
    OIDC_ISSUER_OID,
    OIDC_ISSUER_V2_OID,
    FakeSigstore,
    Tamper,
    key_id,
)

IMAGE = "sha256:" + hashlib.sha256(b"the image manifest").hexdigest()
OTHER_IMAGE = "sha256:" + hashlib.sha256(b"another image manifest").hexdigest()
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"
GITHUB = "https://token.actions.githubusercontent.com"
SIGNER = policy.Identity(identity=IDENTITY, issuer=ISSUER)


@pytest.fixture(scope="module", params=[False, True], ids=["root-only", "with-intermediate"])
def sigstore(request: pytest.FixtureRequest) -> FakeSigstore:
    return FakeSigstore(intermediate=request.param)


def verifier_for(fake: FakeSigstore, tmp_path: Path) -> Verifier:
    path = tmp_path / f"trusted_root-{id(fake)}.json"
    path.write_bytes(fake.trusted_root_json())
    return Verifier(trusted_root=TrustedRoot.from_file(str(path)))


def verify(
    fake: FakeSigstore, bundle: dict[str, Any], tmp_path: Path, identity: policy.Identity = SIGNER
) -> dict[str, Any]:
    payload_type, payload = verifier_for(fake, tmp_path).verify_dsse(Bundle.from_json(json.dumps(bundle)), identity)
    assert payload_type == IN_TOTO_PAYLOAD_TYPE
    statement: dict[str, Any] = json.loads(payload)
    return statement


# -- what it produces is accepted --------------------------------------------------------------------------------


def test_a_keyless_bundle_verifies_and_yields_cosigns_statement(sigstore: FakeSigstore, tmp_path: Path) -> None:
    statement = verify(sigstore, sigstore.keyless_bundle(IMAGE), tmp_path)
    assert statement == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": IMAGE.removeprefix("sha256:")}, "annotations": {}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    }


def test_a_workload_identity_in_a_uri_san_verifies(sigstore: FakeSigstore, tmp_path: Path) -> None:
    bundle = sigstore.keyless_bundle(IMAGE, identity=WORKFLOW, issuer=GITHUB, san_kind="uri", subject_name="app")
    statement = verify(sigstore, bundle, tmp_path, policy.Identity(identity=WORKFLOW, issuer=GITHUB))
    assert statement["subject"][0]["name"] == "app"


def test_every_entry_of_a_growing_log_verifies(tmp_path: Path) -> None:
    """Each bundle sits at another index of a bigger tree, so the inclusion proofs take every shape."""
    fake = FakeSigstore()
    verifier = verifier_for(fake, tmp_path)
    for n in range(6):
        bundle = fake.keyless_bundle(IMAGE)
        proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        assert (int(proof["logIndex"]), int(proof["treeSize"])) == (3 + n, 4 + n)
        verifier.verify_dsse(Bundle.from_json(json.dumps(bundle)), SIGNER)


def test_a_message_signature_bundle_verifies_only_for_its_artifact(sigstore: FakeSigstore, tmp_path: Path) -> None:
    bundle = Bundle.from_json(json.dumps(sigstore.message_signature_bundle(b"a release tarball")))
    verifier = verifier_for(sigstore, tmp_path)
    verifier.verify_artifact(b"a release tarball", bundle, SIGNER)
    with pytest.raises(VerificationError):
        verifier.verify_artifact(b"another tarball", bundle, SIGNER)


def test_an_expired_certificate_verifies_when_it_was_logged_in_its_validity(
    sigstore: FakeSigstore, tmp_path: Path
) -> None:
    """Keyless certificates live minutes: the log's integrated time, not today, is when they must be valid."""
    issued = datetime.now(UTC) - timedelta(days=30)
    certificate = sigstore.issue_certificate(not_before=issued)
    bundle = sigstore.keyless_bundle(IMAGE, certificate=certificate, integrated_time=issued + timedelta(minutes=2))
    assert verify(sigstore, bundle, tmp_path)["predicateType"] == COSIGN_SIGN_PREDICATE


def test_the_trusted_root_holds_this_instances_keys(sigstore: FakeSigstore, tmp_path: Path) -> None:
    path = tmp_path / "trusted_root.json"
    path.write_bytes(sigstore.trusted_root_json())
    root = TrustedRoot.from_file(str(path))
    assert root.get_fulcio_certs() == list(sigstore.ca.chain)
    assert root.get_timestamp_authorities() == []
    document = json.loads(path.read_bytes())
    log_ids = [base64.b64decode(log["logId"]["keyId"]) for log in document["tlogs"] + document["ctlogs"]]
    assert log_ids == [key_id(sigstore.rekor_key.public_key()), key_id(sigstore.ct_key.public_key())]


def test_a_seed_fixes_the_keys() -> None:
    def keys(fake: FakeSigstore) -> list[bytes]:
        pairs = (fake.ca.key, fake.ct_key, fake.rekor_key)
        return [
            k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            for k in pairs
        ]

    assert keys(FakeSigstore(seed="a")) == keys(FakeSigstore(seed="a"))
    assert set(keys(FakeSigstore(seed="a"))).isdisjoint(keys(FakeSigstore(seed="b")))
    assert set(keys(FakeSigstore())).isdisjoint(keys(FakeSigstore()))


def test_the_leaf_follows_fulcios_profile(sigstore: FakeSigstore) -> None:
    _, cert = sigstore.issue_certificate(WORKFLOW, GITHUB, san_kind="uri")
    assert cert.subject == x509.Name([])
    assert cert.issuer == sigstore.ca.chain[0].subject
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(minutes=10)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [WORKFLOW]
    assert cert.extensions.get_extension_for_oid(OIDC_ISSUER_OID).value.value == GITHUB.encode()  # type: ignore[attr-defined]
    v2 = cert.extensions.get_extension_for_oid(OIDC_ISSUER_V2_OID).value.value  # type: ignore[attr-defined]
    assert v2 == bytes([0x0C, len(GITHUB)]) + GITHUB.encode()
    (sct,) = cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert sct.entry_type == LogEntryType.PRE_CERTIFICATE
    assert sct.log_id == key_id(sigstore.ct_key.public_key())
    assert sct.timestamp.replace(tzinfo=UTC) == cert.not_valid_before_utc


# -- what it breaks is refused -----------------------------------------------------------------------------------

TAMPERED: dict[Tamper, str] = {
    "payload": "DSSE: invalid signature",
    "signature": "DSSE: invalid signature",
    "log-body": "log entry payload hash does not match bundle",
    "set": "SET: invalid inclusion promise",
    "checkpoint": "checkpoint: invalid signature",
    "proof": "inclusion proof contains invalid root hash",
}


@pytest.mark.parametrize("tamper", list(TAMPERED))
def test_a_tampered_bundle_is_refused(sigstore: FakeSigstore, tmp_path: Path, tamper: Tamper) -> None:
    with pytest.raises(VerificationError, match=TAMPERED[tamper]):
        verify(sigstore, sigstore.keyless_bundle(IMAGE, tamper=tamper), tmp_path)


def test_a_tampered_message_signature_bundle_is_refused(sigstore: FakeSigstore, tmp_path: Path) -> None:
    verifier = verifier_for(sigstore, tmp_path)
    for tamper in ("signature", "log-body", "set"):
        bundle = Bundle.from_json(json.dumps(sigstore.message_signature_bundle(b"blob", tamper=tamper)))
        with pytest.raises(VerificationError):
            verifier.verify_artifact(b"blob", bundle, SIGNER)


def test_a_signature_for_another_image_verifies_so_the_caller_must_compare_the_subject(
    sigstore: FakeSigstore, tmp_path: Path
) -> None:
    """``verify_dsse`` checks who signed, not what: the subject is the caller's to match against the image."""
    statement = verify(sigstore, sigstore.keyless_bundle(IMAGE, subject_digest=OTHER_IMAGE), tmp_path)
    assert statement["subject"][0]["digest"] == {"sha256": OTHER_IMAGE.removeprefix("sha256:")}


def test_a_certificate_from_an_untrusted_ca_is_refused(sigstore: FakeSigstore, tmp_path: Path) -> None:
    certificate = sigstore.issue_certificate(ca=FakeSigstore().ca)
    with pytest.raises(CertValidationError):
        verify(sigstore, sigstore.keyless_bundle(IMAGE, certificate=certificate), tmp_path)


def test_an_sct_from_an_untrusted_ct_log_is_refused(sigstore: FakeSigstore, tmp_path: Path) -> None:
    certificate = sigstore.issue_certificate(ct_key=FakeSigstore().ct_key)
    with pytest.raises(VerificationError, match="failed to verify SCT"):
        verify(sigstore, sigstore.keyless_bundle(IMAGE, certificate=certificate), tmp_path)


@pytest.mark.parametrize("logged_after", [timedelta(minutes=11), timedelta(minutes=-1)], ids=["expired", "early"])
def test_a_certificate_not_valid_when_logged_is_refused(
    sigstore: FakeSigstore, tmp_path: Path, logged_after: timedelta
) -> None:
    issued = datetime.now(UTC) - timedelta(hours=1)
    certificate = sigstore.issue_certificate(not_before=issued)
    bundle = sigstore.keyless_bundle(IMAGE, certificate=certificate, integrated_time=issued + logged_after)
    with pytest.raises(CertValidationError):
        verify(sigstore, bundle, tmp_path)


@pytest.mark.parametrize(
    "identity",
    [
        policy.Identity(identity="someone@example.test", issuer=ISSUER),
        policy.Identity(identity=IDENTITY, issuer="https://accounts.example.test"),
    ],
    ids=["identity", "issuer"],
)
def test_another_identity_or_issuer_fails_the_policy(
    sigstore: FakeSigstore, tmp_path: Path, identity: policy.Identity
) -> None:
    with pytest.raises(VerificationError, match=r"do(es)? not match"):
        verify(sigstore, sigstore.keyless_bundle(IMAGE), tmp_path, identity)


def test_another_instances_trusted_root_refuses_the_bundle(sigstore: FakeSigstore, tmp_path: Path) -> None:
    with pytest.raises(VerificationError):
        verify(FakeSigstore(), sigstore.keyless_bundle(IMAGE), tmp_path)


def test_a_bundle_without_an_inclusion_promise_or_timestamp_is_malformed(sigstore: FakeSigstore) -> None:
    bundle = sigstore.keyless_bundle(IMAGE)
    del bundle["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    with pytest.raises(InvalidBundle, match="inclusion promise"):
        Bundle.from_json(json.dumps(bundle))
