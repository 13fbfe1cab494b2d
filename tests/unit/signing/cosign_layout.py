"""How cosign, skopeo and sigstore-go lay signatures out in a registry, rebuilt by hand for the verifier's tests:
simple-signing payloads in tag-scheme and referrers manifests, and key-based Sigstore bundles (a DSSE envelope
around cosign v3's in-toto statement), signed with ``cryptography`` (and libsodium for Ed25519ph)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import nacl.bindings
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from dockyard.core import mediatypes as mt
from dockyard.signing import formats as f
from dockyard.signing.keys import PrivateKey, PublicKey, key_id
from dockyard.signing.verify import VerificationResult, verify_signature_manifest

SUBJECT = "sha256:" + hashlib.sha256(b"the image manifest").hexdigest()
OTHER = "sha256:" + hashlib.sha256(b"another image manifest").hexdigest()
EMPTY_CONFIG = {"mediaType": mt.OCI_EMPTY, "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- signing, as cosign and skopeo do ---------------------------------------------------------------------------


def sign(key: PrivateKey, message: bytes, scheme: str = "default") -> bytes:
    """``default``: what skopeo and cosign ≤ 2.4 write (SHA-256, pure Ed25519, PKCS#1 v1.5); ``curve-hash``:
    cosign v3's ECDSA P-384 with SHA-384; ``ph``: Ed25519ph (cosign ≥ 2.5); ``pss``: RSA-PSS."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = hashes.SHA384() if scheme == "curve-hash" else hashes.SHA256()
        return key.sign(message, ec.ECDSA(algorithm))
    if isinstance(key, rsa.RSAPrivateKey):
        if scheme == "pss":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
            return key.sign(message, pss, hashes.SHA256())
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    if scheme == "ph":
        _, secret = nacl.bindings.crypto_sign_seed_keypair(key.private_bytes_raw())
        state = nacl.bindings.crypto_sign_ed25519ph_state()
        nacl.bindings.crypto_sign_ed25519ph_update(state, message)
        return nacl.bindings.crypto_sign_ed25519ph_final_create(state, secret)
    return key.sign(message)


@dataclass
class Signer:
    name: str
    key: PrivateKey

    @property
    def public(self) -> PublicKey:
        return self.key.public_key()

    @property
    def id(self) -> str:
        return key_id(self.public)

    @property
    def trusted(self) -> dict[str, PublicKey]:
        return {self.id: self.public}


_KEYS: dict[str, PrivateKey] = {
    "ecdsa-p256": ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": ec.generate_private_key(ec.SECP384R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
    "rsa-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
}
SIGNERS = [Signer(name, key) for name, key in _KEYS.items()]
P256 = SIGNERS[0]
STRANGER = Signer("stranger", ec.generate_private_key(ec.SECP256R1()))


# -- what cosign stores ------------------------------------------------------------------------------------------


class Repo:
    """Blobs of a repository, and a ``read_blob`` that records what it was asked for."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.asked: list[tuple[str, int]] = []

    def put(self, data: bytes) -> dict[str, Any]:
        self.blobs[digest_of(data)] = data
        return {"digest": digest_of(data), "size": len(data)}

    def read(self, digest: str, size: int) -> bytes | None:
        self.asked.append((digest, size))
        return self.blobs.get(digest)


def simple_signing(digest: str = SUBJECT, optional: Any = None) -> bytes:
    doc = {
        "critical": {
            "identity": {"docker-reference": "registry.test/ns/app"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": optional,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def sig_layer(repo: Repo, payload: bytes, signature: str | None, **annotations: str) -> dict[str, Any]:
    if signature is not None:
        annotations[f.ANNOTATION_SIGNATURE] = signature
    return {"mediaType": f.SIMPLE_SIGNING, **repo.put(payload), "annotations": annotations}


def signed_layer(repo: Repo, signer: Signer, payload: bytes | None = None, scheme: str = "default") -> dict[str, Any]:
    payload = simple_signing() if payload is None else payload
    return sig_layer(repo, payload, b64(sign(signer.key, payload, scheme)))


def cosign_manifest(repo: Repo, layers: list[dict[str, Any]], mode: str = "cosign", **extra: Any) -> bytes:
    """``cosign``: the tag-scheme image; ``referrer``: cosign's ``--registry-referrers-mode=oci-1-1`` form."""
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", **repo.put(b'{"architecture":""}')}
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": layers}
    if mode == "referrer":
        doc["config"]["mediaType"] = f.COSIGN_SIG_ARTIFACT
        doc["subject"] = {"mediaType": mt.OCI_MANIFEST, "digest": SUBJECT, "size": 18}
    return json.dumps({**doc, **extra}).encode()


def statement(digest: str = SUBJECT, predicate_type: str = f.COSIGN_SIGN_PREDICATE) -> bytes:
    """An in-toto statement as cosign v3's ``signDigestBundle`` marshals it (protojson field order)."""
    algorithm, encoded = digest.split(":")
    doc = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {algorithm: encoded}}],
        "predicateType": predicate_type,
        "predicate": {},
    }
    return json.dumps(doc).encode()


def hint(signer: Signer) -> str:
    return b64(bytes.fromhex(signer.id))


def dsse_bundle(
    signer: Signer, payload: bytes | None = None, scheme: str = "default", payload_type: str = f.IN_TOTO, **extra: Any
) -> dict[str, Any]:
    """A key-based Sigstore bundle v0.3 as sigstore-go's ``sign.Bundle`` writes it for ``cosign sign --key``."""
    payload = statement() if payload is None else payload
    signature = sign(signer.key, f.dsse_pae(payload_type, payload), scheme)
    return {
        "mediaType": f.SIGSTORE_BUNDLE_V03,
        "verificationMaterial": {"publicKey": {"hint": hint(signer)}, **extra},
        "dsseEnvelope": {"payload": b64(payload), "payloadType": payload_type, "signatures": [{"sig": b64(signature)}]},
    }


def bundle_manifest(repo: Repo, bundle: dict[str, Any] | bytes, **extra: Any) -> bytes:
    """The referrer cosign's ``WriteAttestationNewBundleFormat`` pushes."""
    data = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": f.SIGSTORE_BUNDLE_V03,
        "config": {**EMPTY_CONFIG, "artifactType": f.SIGSTORE_BUNDLE_V03},
        "layers": [{"mediaType": f.SIGSTORE_BUNDLE_V03, **repo.put(data)}],
        "subject": {"mediaType": mt.OCI_MANIFEST, "digest": SUBJECT, "size": 18},
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": f.COSIGN_SIGN_PREDICATE,
            f.ANNOTATION_CREATED: "2026-03-08T18:18:20Z",
        },
        **extra,
    }
    return json.dumps(doc).encode()


def verify(
    repo: Repo, manifest: bytes, keys: dict[str, PublicKey], subject: str = SUBJECT, media_type: str = mt.OCI_MANIFEST
) -> list[VerificationResult]:
    return verify_signature_manifest(manifest, media_type, subject, repo.read, keys)


def only(results: list[VerificationResult]) -> VerificationResult:
    assert len(results) == 1, results
    return results[0]
