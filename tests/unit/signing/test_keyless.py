"""Keyless (certificate) signatures: Sigstore bundles made by the fake Sigstore (``tests/support/fake_sigstore.py``),
laid out as cosign v3 pushes them (``cosign_layout.bundle_manifest``) and verified through
``verify_signature_manifest`` against a trusted root and a namespace's trusted identities. A bundle verifies only
for a certificate of the trusted CA naming a trusted issuer (exactly) and a subject its pattern matches in full,
logged in the trusted transparency log, over a statement about this image; everything else is "not verified" with
a reason, never an exception. Also the trusted-root loader and the subject-pattern compiler."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigstore.models import TrustedRoot

from dockyard.core import mediatypes as mt
from dockyard.signing.keyless import (
    MAX_PATTERN_CHARS,
    KeylessTrust,
    TrustedIdentity,
    certificate_identity,
    compile_subject,
    identity_id,
    load_trusted_root,
)
from dockyard.signing.keys import PublicKey, key_id
from dockyard.signing.verify import VerificationResult, verify_signature_manifest
from tests.support.fake_sigstore import IDENTITY, ISSUER, OIDC_ISSUER_OID, FakeSigstore, Tamper
from tests.unit.signing.cosign_layout import OTHER, SUBJECT, Repo, bundle_manifest, only

WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0"
GITHUB = "https://token.actions.githubusercontent.com"
USERNAME_SAN = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
SUBJECT_ARTIFACT = b"the image manifest"  # cosign_layout.SUBJECT is its SHA-256
assert "sha256:" + hashlib.sha256(SUBJECT_ARTIFACT).hexdigest() == SUBJECT

FAKE = FakeSigstore(seed="test-keyless")


def trusted(issuer: str, subject: str) -> TrustedIdentity:
    return TrustedIdentity(identity_id(issuer, subject), issuer, subject)


def root_of(fake: FakeSigstore, tmp_path: Path) -> TrustedRoot:
    path = tmp_path / f"trusted_root-{id(fake)}.json"
    path.write_bytes(fake.trusted_root_json())
    root, sha = load_trusted_root(path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> TrustedRoot:
    return root_of(FAKE, tmp_path_factory.mktemp("root"))


@pytest.fixture(scope="module")
def trust_for(root: TrustedRoot) -> Callable[..., KeylessTrust]:
    def make(*identities: TrustedIdentity) -> KeylessTrust:
        return KeylessTrust(root, identities)

    return make


SIGNER = trusted(ISSUER, r"signer@example\.test")


def verify(
    bundle: dict[str, Any] | bytes,
    keyless: KeylessTrust | None,
    subject: str = SUBJECT,
    keys: dict[str, PublicKey] | None = None,
) -> VerificationResult:
    repo = Repo()
    manifest = bundle_manifest(repo, bundle, subject={"mediaType": mt.OCI_MANIFEST, "digest": subject, "size": 18})
    result = only(verify_signature_manifest(manifest, mt.OCI_MANIFEST, subject, repo.read, keys or {}, keyless))
    assert result.format == "bundle"
    assert result.reason
    assert "internal error" not in result.reason, result
    return result


def refused(result: VerificationResult, *fragments: str) -> None:
    assert not result.verified, result
    assert result.certificate
    for fragment in fragments:
        assert fragment in result.reason, result.reason


# -- what verifies ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identity", "issuer", "san_kind", "pattern"),
    [
        (IDENTITY, ISSUER, "email", r"signer@example\.test"),
        (IDENTITY, ISSUER, "email", r".*@example\.test"),
        (IDENTITY, ISSUER, "email", r"nobody@example\.test|signer@example\.test"),
        (WORKFLOW, GITHUB, "uri", r"https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/tags/v.*"),
        (WORKFLOW, GITHUB, "uri", re.escape(WORKFLOW)),
    ],
    ids=["email-exact", "email-domain", "email-alternation", "uri-regex", "uri-exact"],
)
def test_a_keyless_bundle_of_a_trusted_identity_verifies(
    trust_for: Callable[..., KeylessTrust], identity: str, issuer: str, san_kind: Any, pattern: str
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    bundle = FAKE.keyless_bundle(SUBJECT, identity=identity, issuer=issuer, san_kind=san_kind)
    trusted_identity = trusted(issuer, pattern)
    result = verify(bundle, trust_for(trusted(ISSUER, "someone-else@example\\.test"), trusted_identity))
    assert result.verified, result.reason
    assert result.key_id == trusted_identity.identity_id
    assert re.fullmatch(r"oidc-[0-9a-f]{16}", result.key_id)
    assert result.identity == identity
    assert result.certificate
    assert result.rekor_bundle
    assert identity in result.reason
    assert result.signed_at is not None
    assert before <= result.signed_at <= datetime.now(UTC)  # the log's integrated time


def test_a_ca_with_an_intermediate_verifies(tmp_path: Path) -> None:
    fake = FakeSigstore(intermediate=True)
    result = verify(fake.keyless_bundle(SUBJECT), KeylessTrust(root_of(fake, tmp_path), (SIGNER,)))
    assert result.verified, result.reason
    assert (result.key_id, result.identity) == (SIGNER.identity_id, IDENTITY)


def test_an_expired_certificate_verifies_when_logged_in_its_validity(trust_for: Callable[..., KeylessTrust]) -> None:
    """Fulcio certificates live ten minutes: a month-old signature is judged at the time the log recorded it."""
    issued = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    certificate = FAKE.issue_certificate(not_before=issued)
    logged = issued + timedelta(minutes=2)
    bundle = FAKE.keyless_bundle(SUBJECT, certificate=certificate, integrated_time=logged)
    result = verify(bundle, trust_for(SIGNER))
    assert result.verified, result.reason
    assert result.signed_at == logged


def test_a_long_issuer_is_read_from_the_certificate(trust_for: Callable[..., KeylessTrust]) -> None:
    """The issuer extension is a DER UTF8String; past 127 bytes its length takes the long form."""
    issuer = "https://" + "issuer." * 40 + "example.test"
    _, cert = FAKE.issue_certificate(issuer=issuer)
    assert certificate_identity(cert) == (issuer, [IDENTITY])
    assert verify(FAKE.keyless_bundle(SUBJECT, issuer=issuer), trust_for(trusted(issuer, ".*"))).verified


def test_certificate_identity_reads_uri_sans() -> None:
    _, cert = FAKE.issue_certificate(WORKFLOW, GITHUB, san_kind="uri")
    assert certificate_identity(cert) == (GITHUB, [WORKFLOW])


SIGNING_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def username_certificate(username: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate of the fake CA for a username identity, as Fulcio issues it for username-based OIDC issuers:
    the SAN is Sigstore's otherName (``1.3.6.1.4.1.57264.1.7``), an explicitly tagged UTF8String. (The fake issues
    e-mail and URI SANs only, so this rebuilds its ``issue_certificate`` with another SAN.)"""
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC).replace(microsecond=0)
    san = x509.OtherName(USERNAME_SAN, bytes([0x0C, len(username)]) + username.encode())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(FAKE.ca.chain[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(minutes=10))
        .add_extension(SIGNING_ONLY, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(FAKE.ca.key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_OID, ISSUER.encode()), critical=False)
    )
    precert = builder.sign(FAKE.ca.key, hashes.SHA384())
    scts = FAKE._sct_list(precert.tbs_certificate_bytes, FAKE.ca.key.public_key(), FAKE.ct_key, start)
    length = len(scts).to_bytes(2) if len(scts) > 0xFF else len(scts).to_bytes(1)
    octets = bytes([0x04]) + (length if len(scts) < 0x80 else bytes([0x80 | len(length)]) + length) + scts
    extension = x509.UnrecognizedExtension(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, octets)
    return key, builder.add_extension(extension, critical=False).sign(FAKE.ca.key, hashes.SHA384())


def test_a_username_identity_in_an_othername_san_verifies(trust_for: Callable[..., KeylessTrust]) -> None:
    certificate = username_certificate("octocat!github")
    assert certificate_identity(certificate[1]) == (ISSUER, ["octocat!github"])
    result = verify(
        FAKE.keyless_bundle(SUBJECT, certificate=certificate), trust_for(trusted(ISSUER, r"octocat!github"))
    )
    assert result.verified, result.reason
    assert result.identity == "octocat!github"


def test_a_message_signature_over_the_manifest_digest_verifies(trust_for: Callable[..., KeylessTrust]) -> None:
    result = verify(FAKE.message_signature_bundle(SUBJECT_ARTIFACT), trust_for(SIGNER))
    assert result.verified, result.reason
    assert (result.key_id, result.identity) == (SIGNER.identity_id, IDENTITY)


def test_a_message_signature_over_another_digest_does_not(trust_for: Callable[..., KeylessTrust]) -> None:
    refused(verify(FAKE.message_signature_bundle(b"another image manifest"), trust_for(SIGNER)), "digest")
    refused(verify(FAKE.message_signature_bundle(SUBJECT_ARTIFACT), trust_for(SIGNER), subject=OTHER), "digest")


# -- who signed: issuer and subject -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer",
    ["https://accounts.example.test", ISSUER + "/", ISSUER.upper(), "https://issuer.example", ISSUER[:-1]],
)
def test_another_issuer_is_not_trusted(trust_for: Callable[..., KeylessTrust], issuer: str) -> None:
    result = verify(FAKE.keyless_bundle(SUBJECT), trust_for(trusted(issuer, ".*")))
    refused(result, "not one the namespace trusts", ISSUER)
    assert result.key_id is None
    assert result.identity == IDENTITY


@pytest.mark.parametrize(
    ("identity", "san_kind", "pattern"),
    [
        (IDENTITY, "email", "example"),
        (IDENTITY, "email", "signer"),
        (IDENTITY, "email", r"example\.test"),
        (IDENTITY, "email", r".*@example"),
        (IDENTITY, "email", r"signer@example\.tes"),
        (IDENTITY, "email", r"xsigner@example\.test"),
        (IDENTITY, "email", r"nobody|signer"),
        (IDENTITY, "email", r"SIGNER@example\.test"),
        (WORKFLOW, "uri", r"https://github\.com/acme/app"),
        (WORKFLOW, "uri", r"https://github\.com/acme/.+/\.github/workflows/release\.yml"),
        (WORKFLOW, "uri", r"https://github\.com/other/.*"),
    ],
)
def test_a_subject_pattern_must_match_the_whole_subject(
    trust_for: Callable[..., KeylessTrust], identity: str, san_kind: Any, pattern: str
) -> None:
    issuer = ISSUER if san_kind == "email" else GITHUB
    assert not re.fullmatch(pattern, identity)
    result = verify(
        FAKE.keyless_bundle(SUBJECT, identity=identity, issuer=issuer, san_kind=san_kind),
        trust_for(trusted(issuer, pattern)),
    )
    refused(result, "not one the namespace trusts")
    assert result.key_id is None


def test_the_issuer_and_subject_must_belong_to_one_identity(trust_for: Callable[..., KeylessTrust]) -> None:
    """Issuer of one trusted identity, subject of another: neither identity is the signer."""
    keyless = trust_for(trusted(ISSUER, r"nobody@example\.test"), trusted(GITHUB, r"signer@example\.test"))
    refused(verify(FAKE.keyless_bundle(SUBJECT), keyless), "not one the namespace trusts")


def test_a_namespace_without_identities_trusts_no_keyless_signature(root: TrustedRoot) -> None:
    refused(verify(FAKE.keyless_bundle(SUBJECT), KeylessTrust(root, ())), "no keyless identity")


def test_without_a_trusted_root_keyless_bundles_are_not_verified() -> None:
    result = verify(FAKE.keyless_bundle(SUBJECT), None)
    refused(result, "no Sigstore trusted root")
    assert result.key_id is None


def test_a_trusted_key_equal_to_the_certificates_does_not_bypass_the_log(
    trust_for: Callable[..., KeylessTrust],
) -> None:
    """A certificate bundle is judged as keyless, whatever keys the namespace trusts."""
    key, cert = FAKE.issue_certificate()
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    keys: dict[str, PublicKey] = {key_id(public): public}
    bundle = FAKE.keyless_bundle(SUBJECT, certificate=(key, cert), tamper="set")
    refused(verify(bundle, trust_for(SIGNER), keys=keys))
    refused(verify(FAKE.keyless_bundle(SUBJECT, certificate=(key, cert)), None, keys=keys), "no Sigstore trusted root")


# -- what was signed, and by which CA and log -------------------------------------------------------------------


def test_a_statement_about_another_image_is_not_verified(trust_for: Callable[..., KeylessTrust]) -> None:
    result = verify(FAKE.keyless_bundle(SUBJECT, subject_digest=OTHER), trust_for(SIGNER))
    refused(result, "subject", SUBJECT)
    assert result.key_id == SIGNER.identity_id  # the identity it claims


def test_a_bundle_for_this_image_does_not_verify_another(trust_for: Callable[..., KeylessTrust]) -> None:
    refused(verify(FAKE.keyless_bundle(SUBJECT), trust_for(SIGNER), subject=OTHER), "subject")


TAMPERED: dict[Tamper, str] = {
    "payload": "signature",
    "signature": "signature",
    "log-body": "log entry",
    "set": "inclusion promise",
    "checkpoint": "checkpoint",
    "proof": "inclusion proof",
}


@pytest.mark.parametrize("tamper", list(TAMPERED))
def test_a_tampered_bundle_is_not_verified(trust_for: Callable[..., KeylessTrust], tamper: Tamper) -> None:
    result = verify(FAKE.keyless_bundle(SUBJECT, tamper=tamper), trust_for(SIGNER))
    refused(result, "keyless signature", TAMPERED[tamper])


def test_a_certificate_of_another_ca_is_not_verified(trust_for: Callable[..., KeylessTrust]) -> None:
    certificate = FAKE.issue_certificate(ca=FakeSigstore().ca)
    refused(verify(FAKE.keyless_bundle(SUBJECT, certificate=certificate), trust_for(SIGNER)), "keyless signature")


def test_an_sct_of_an_untrusted_ct_log_is_not_verified(trust_for: Callable[..., KeylessTrust]) -> None:
    certificate = FAKE.issue_certificate(ct_key=FakeSigstore().ct_key)
    refused(verify(FAKE.keyless_bundle(SUBJECT, certificate=certificate), trust_for(SIGNER)), "SCT")


@pytest.mark.parametrize("logged_after", [timedelta(minutes=11), timedelta(minutes=-1)], ids=["expired", "early"])
def test_a_certificate_not_valid_when_logged_is_not_verified(
    trust_for: Callable[..., KeylessTrust], logged_after: timedelta
) -> None:
    issued = datetime.now(UTC) - timedelta(hours=1)
    certificate = FAKE.issue_certificate(not_before=issued)
    bundle = FAKE.keyless_bundle(SUBJECT, certificate=certificate, integrated_time=issued + logged_after)
    refused(verify(bundle, trust_for(SIGNER)), "keyless signature")


def test_another_instances_trusted_root_refuses_the_bundle(tmp_path: Path) -> None:
    other = KeylessTrust(root_of(FakeSigstore(), tmp_path), (SIGNER,))
    refused(verify(FAKE.keyless_bundle(SUBJECT), other), "keyless signature")
    refused(verify(FAKE.message_signature_bundle(SUBJECT_ARTIFACT), other), "keyless signature")


def _good() -> dict[str, Any]:
    return FAKE.keyless_bundle(SUBJECT)


def _without_promise() -> dict[str, Any]:
    bundle = _good()
    del bundle["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
    return bundle


def _with_certificate(raw: str) -> dict[str, Any]:
    bundle = _good()
    bundle["verificationMaterial"]["certificate"]["rawBytes"] = raw
    return bundle


GARBAGE: dict[str, Callable[[], dict[str, Any] | bytes]] = {
    "not-json": lambda: b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verif',
    "certificate-only": lambda: {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"certificate": {"rawBytes": "AAAA"}},
        "dsseEnvelope": {"payload": "", "payloadType": "", "signatures": []},
    },
    "certificate-not-base64": lambda: _with_certificate("%%% not base64 %%%"),
    "certificate-not-der": lambda: _with_certificate("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
    "certificate-a-number": lambda: {**_good(), "verificationMaterial": {"certificate": 42, "tlogEntries": []}},
    "no-tlog-entries": lambda: {
        **_good(),
        "verificationMaterial": {**_good()["verificationMaterial"], "tlogEntries": []},
    },
    "no-inclusion-promise": _without_promise,
    "both-contents": lambda: {**_good(), "messageSignature": FAKE.message_signature_bundle(b"x")["messageSignature"]},
    "no-content": lambda: {k: v for k, v in _good().items() if k != "dsseEnvelope"},
    "certificate-chain": lambda: {
        **_good(),
        "verificationMaterial": {"x509CertificateChain": {"certificates": [{"rawBytes": "AAAA"}]}},
    },
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_a_malformed_keyless_bundle_is_not_verified(trust_for: Callable[..., KeylessTrust], name: str) -> None:
    result = verify(GARBAGE[name](), trust_for(SIGNER))
    assert not result.verified, result


# -- the trusted root and subject patterns -----------------------------------------------------------------------


def test_loading_a_trusted_root_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the Sigstore trusted root"):
        load_trusted_root(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="cannot read the Sigstore trusted root"):
        load_trusted_root(tmp_path)  # a directory

    not_json = tmp_path / "not-json.json"
    not_json.write_bytes(b"trusted_root: yes\n")
    with pytest.raises(ValueError, match="is not a usable Sigstore trusted root"):
        load_trusted_root(not_json)

    document = FAKE.trusted_root()
    document["certificateAuthorities"] = []
    no_ca = tmp_path / "no-ca.json"
    no_ca.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="is not a usable Sigstore trusted root") as caught:
        load_trusted_root(no_ca)
    assert str(no_ca) in str(caught.value)

    for name, doc in {
        "empty-object": {},
        "a-list": [],
        "wrong-media-type": {**FAKE.trusted_root(), "mediaType": 3},
    }.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match="is not a usable Sigstore trusted root"):
            load_trusted_root(path)


def test_a_huge_trusted_root_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_bytes(b" " * (4 * 1024 * 1024 + 1))
    with pytest.raises(ValueError, match="larger than"):
        load_trusted_root(path)


@pytest.mark.parametrize("pattern", ["(", "[a-", "*", "a{2,1}", "(?P<x>a)(?P<x>b)"])
def test_compile_subject_refuses_bad_regular_expressions(pattern: str) -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        compile_subject(pattern)


@pytest.mark.parametrize("pattern", ["", "a" * (MAX_PATTERN_CHARS + 1)], ids=["empty", "too-long"])
def test_compile_subject_refuses_empty_and_long_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match=f"1 to {MAX_PATTERN_CHARS} characters"):
        compile_subject(pattern)


def test_compile_subject_and_identity_ids() -> None:
    assert compile_subject(r".*@example\.test").fullmatch(IDENTITY)
    assert identity_id(ISSUER, ".*") == identity_id(ISSUER, ".*")
    assert re.fullmatch(r"oidc-[0-9a-f]{16}", identity_id(ISSUER, ".*"))
    ids = {
        identity_id(ISSUER, ".*"),
        identity_id(GITHUB, ".*"),
        identity_id(ISSUER, ".+"),
        identity_id(ISSUER + ".", "*"),
    }
    assert len(ids) == 4


# -- mutations never verify --------------------------------------------------------------------------------------

# Signatures are randomised: build the original once so that Hypothesis replays the same bytes.
_ORIGINAL = FAKE.keyless_bundle(SUBJECT)
JsonPath = tuple[str | int, ...]


def _leaves(doc: Any, prefix: JsonPath = ()) -> list[JsonPath]:
    """Every path into ``doc`` (objects and arrays included, so whole branches can be replaced or dropped)."""
    paths = [prefix] if prefix else []
    if isinstance(doc, dict):
        for name, value in doc.items():
            paths += _leaves(value, (*prefix, name))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            paths += _leaves(value, (*prefix, index))
    return paths


PATHS = _leaves(_ORIGINAL)
# What the verification rests on: a change to any of these must not verify. (Every field of the log entry is
# covered by its inclusion promise or proof; of the whole bundle, only an empty timestampVerificationData can go.)
SIGNED = ("dsseEnvelope", "certificate", "tlogEntries")
REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.text(max_size=20),
    st.sampled_from(["", "AAAA", "=", "MEUCIQ==", "sha256", "dsse", "0.0.1", "1", "-1", "9" * 30]),
    st.lists(st.text(max_size=4), max_size=2),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
)


def _get(doc: Any, path: JsonPath) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _flip_base64(value: str, index: int) -> str | None:
    """``value`` with one bit of its decoded bytes flipped, re-encoded (None when it is not base64)."""
    try:
        raw = bytearray(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return None
    if not raw:
        return None
    raw[index % len(raw)] ^= 1 << (index % 8)
    return base64.b64encode(bytes(raw)).decode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(PATHS),
    action=st.sampled_from(["replace", "delete", "flip"]),
    replacement=REPLACEMENTS,
    index=st.integers(min_value=0, max_value=10_000),
)
def test_a_mutated_keyless_bundle_never_raises_nor_verifies_what_was_changed(
    root: TrustedRoot, path: JsonPath, action: str, replacement: Any, index: int
) -> None:
    bundle = copy.deepcopy(_ORIGINAL)
    parent, last = _get(bundle, path[:-1]), path[-1]
    before = parent[last]
    if action == "delete":
        del parent[last]
    elif action == "flip" and isinstance(before, str) and (flipped := _flip_base64(before, index)) is not None:
        parent[last] = flipped
    else:
        parent[last] = replacement
    changed = action == "delete" or parent[last] != before
    repo = Repo()
    manifest = bundle_manifest(repo, bundle)
    results = verify_signature_manifest(
        manifest, mt.OCI_MANIFEST, SUBJECT, repo.read, {}, KeylessTrust(root, (SIGNER,))
    )
    assert results
    for result in results:
        assert result.reason
        assert "internal error" not in result.reason, (path, action, result)
        if changed and result.verified:
            assert not any(step in SIGNED for step in path), (path, action, result)


def test_the_unmutated_original_verifies(root: TrustedRoot) -> None:
    """The mutation test's baseline: without a change, the bundle verifies."""
    assert verify(copy.deepcopy(_ORIGINAL), KeylessTrust(root, (SIGNER,))).verified
