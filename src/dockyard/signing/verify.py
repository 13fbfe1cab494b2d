"""Verification of stored signature manifests against trusted public keys: pure, no DB, no network.

Given a signature manifest, the image manifest digest it should sign, a reader for its (small) blobs and the
trusted keys, :func:`verify_signature_manifest` decides per signature whether it is verified. Three layouts:

- ``cosign``: the tag scheme (``sha256-<hex>.sig``, cosign classic and ``skopeo --sign-by-sigstore-private-key``):
  each layer is a simple-signing payload, signed in its ``dev.cosignproject.cosign/signature`` annotation;
- ``referrer``: the same layers in a manifest whose ``subject`` is the image (``--registry-referrers-mode=oci-1-1``;
  cosign sets ``config.mediaType`` to ``application/vnd.dev.cosign.artifact.sig.v1+json``);
- ``bundle``: a Sigstore bundle layer (cosign v3's default). ``cosign sign --key`` writes a DSSE envelope around an
  in-toto statement (predicate ``https://sigstore.dev/cosign/sign/v1``, subject = the image digest) with
  ``verificationMaterial.publicKey.hint`` = base64(SHA-256(SPKI DER)); a ``messageSignature`` verifies only when its
  message digest is the image manifest digest itself. Keyless (certificate) bundles are verified by
  ``dockyard.signing.keyless`` against the admin's trusted root and the namespace's identities; certificates in
  the tag scheme (cosign v2 keyless) carry no inclusion proof and are "not verified".

Signature schemes, tried in turn because cosign versions differ: ECDSA (ASN.1 DER) with SHA-256, and for P-384
with SHA-384 (cosign v3's default); Ed25519, pure (skopeo, cosign ≤ 2.4) then Ed25519ph (cosign ≥ 2.5);
RSA PKCS#1 v1.5 then PSS, with SHA-256. For key-based signatures, Rekor bundles, transparency-log entries and
RFC 3161 timestamps are not checked (a trusted key is the whole trust decision); their presence is recorded.
``signed_at`` is the signed payload's ``optional.timestamp`` when there is one, else a claimed time (Rekor
integrated time, the manifest's ``org.opencontainers.image.created``): informative, not proof.

Contract: bad input never raises — it yields ``verified=False`` with a reason. Only ``read_blob``'s own errors
(storage trouble) propagate, so that a caller does not record a storage failure as "not verified".
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Literal

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils

from dockyard.core.digest import Digest
from dockyard.core.manifest import Descriptor, ParsedManifest, parse_manifest
from dockyard.errors import DomainError
from dockyard.signing import formats as f
from dockyard.signing.formats import is_signature_artifact, signature_tag
from dockyard.signing.keyless import KeylessTrust, verify_keyless_bundle
from dockyard.signing.keys import MIN_RSA_BITS, PublicKey

__all__ = [
    "BlobReader",
    "Format",
    "VerificationResult",
    "is_signature_artifact",
    "signature_tag",
    "verify_signature_manifest",
]

log = logging.getLogger("dockyard.signing")

Format = Literal["cosign", "referrer", "bundle"]
BlobReader = Callable[[str, int], "bytes | None"]
"""``read_blob(digest, size)``: the blob's bytes, or None when the repository does not have it."""

MAX_SIGNATURES = 64  # layers (or DSSE signatures) looked at per manifest
MAX_BUNDLES = 8  # bundle layers looked at per manifest (cosign writes one), at most 1 MiB each
MAX_SIGNATURE_CHARS = 4096  # base64 of a signature: RSA-8192 needs 1,368
MAX_B64_PAYLOAD_CHARS = (f.MAX_BUNDLE_BYTES * 4) // 3 + 4
_ECDSA_HASHES: dict[str, tuple[hashes.HashAlgorithm, ...]] = {
    "secp256r1": (hashes.SHA256(),),
    "secp384r1": (hashes.SHA384(), hashes.SHA256()),
}
_MESSAGE_DIGESTS: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "SHA2_256": ("sha256", hashes.SHA256()),
    "SHA2_512": ("sha512", hashes.SHA512()),
}


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The verdict on one signature. ``key_id`` names the trusted key that verified it, or — when not verified —
    the key it claims (a bundle's hint) or the trusted key whose signature was over the wrong content."""

    key_id: str | None
    verified: bool
    format: Format
    signed_at: datetime | None
    reason: str
    certificate: bool = False  # carries a certificate (keyless material)
    identity: str | None = None  # a keyless signature's certificate subject (e-mail, URI)
    rekor_bundle: bool = False  # carries a Rekor bundle or transparency-log entry: present, not checked


class _ReadFailed(Exception):
    """Wraps an exception raised by the caller's blob reader so it escapes the fail-closed guard unchanged."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _read(read_blob: BlobReader, descriptor: Descriptor) -> bytes | str | None:
    """The blob's bytes; None when missing; a reason string when it does not match its descriptor."""
    try:
        data = read_blob(str(descriptor.digest), descriptor.size)
    except Exception as exc:
        raise _ReadFailed(exc) from exc
    if data is None:
        return None
    if len(data) != descriptor.size or Digest.of(bytes(data), descriptor.digest.algorithm) != descriptor.digest:
        return "does not match its digest and size"
    return bytes(data)


# -- signature schemes ----------------------------------------------------------------------------------------------


def _usable(key: object) -> bool:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.curve.name in _ECDSA_HASHES
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size >= MIN_RSA_BITS
    return isinstance(key, ed25519.Ed25519PublicKey)


def _ed25519ph_verifies(key: ed25519.Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != 64:
        return False
    state = nacl.bindings.crypto_sign_ed25519ph_state()
    nacl.bindings.crypto_sign_ed25519ph_update(state, message)
    try:
        return bool(nacl.bindings.crypto_sign_ed25519ph_final_verify(state, signature, key.public_bytes_raw()))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return False


def _verifies(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``key``'s signature over ``message`` under one of the schemes cosign uses."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            for algorithm in _ECDSA_HASHES.get(key.curve.name, ()):
                try:
                    key.verify(signature, message, ec.ECDSA(algorithm))
                    return True
                except InvalidSignature:
                    continue
            return False
        if isinstance(key, ed25519.Ed25519PublicKey):
            try:
                key.verify(signature, message)
                return True
            except InvalidSignature:
                return _ed25519ph_verifies(key, signature, message)
        return _rsa_verifies(key, signature, message, hashes.SHA256(), prehashed=False)
    except (ValueError, TypeError):  # malformed signature bytes that the backend refuses outright
        return False


def _rsa_verifies(
    key: rsa.RSAPublicKey, signature: bytes, message: bytes, algorithm: hashes.HashAlgorithm, *, prehashed: bool
) -> bool:
    """PKCS#1 v1.5, then PSS (any salt length); ``message`` is the digest itself when ``prehashed``."""
    schemes = (padding.PKCS1v15(), padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.AUTO))
    for scheme in schemes:
        try:
            key.verify(signature, message, scheme, utils.Prehashed(algorithm) if prehashed else algorithm)
            return True
        except InvalidSignature:
            continue
    return False


def _digest_verifies(key: PublicKey, signature: bytes, digest: bytes, algorithm: hashes.HashAlgorithm) -> bool:
    """``signature`` over a message known only by its digest (a bundle's ``messageSignature``)."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, digest, ec.ECDSA(utils.Prehashed(algorithm)))
            return True
        if isinstance(key, rsa.RSAPublicKey):
            return _rsa_verifies(key, signature, digest, algorithm, prehashed=True)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return False  # pure Ed25519 signs the message itself, Ed25519ph its SHA-512: neither is this digest


def _signer(keys: Mapping[str, PublicKey], check: Callable[[PublicKey], bool], hint: str | None = None) -> str | None:
    """The id of the first usable trusted key for which ``check`` holds, trying the hinted key first."""
    order = sorted(keys, key=lambda kid: kid != hint)
    for kid in order:
        key = keys[kid]
        if _usable(key) and check(key):
            return kid
    return None


# -- tag scheme and referrers: simple-signing layers ----------------------------------------------------------------


def _simple_signing_claims(payload: bytes) -> tuple[str, datetime | None]:
    """The image digest a simple-signing payload names, and its signed ``optional.timestamp``."""
    doc = f.load_json_object(payload, max_bytes=f.MAX_PAYLOAD_BYTES)
    critical = f.lookup(doc, "critical")
    if not isinstance(critical, dict):
        raise f.FormatError("has no 'critical' object")
    kind = f.lookup(critical, "type")
    if kind != f.SIMPLE_SIGNING_TYPE:
        raise f.FormatError(f"has type {str(kind)[:80]!r}, not {f.SIMPLE_SIGNING_TYPE!r}")
    image = f.lookup(critical, "image")
    digest = f.lookup(image, "docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str):
        raise f.FormatError("has no critical.image.docker-manifest-digest")
    optional = f.lookup(doc, "optional")
    timestamp = f.time_from_unix(f.lookup(optional, "timestamp")) if isinstance(optional, dict) else None
    return digest, timestamp


def _rekor_time(annotation: str) -> datetime | None:
    try:
        doc = f.load_json_object(annotation.encode("utf-8"), max_bytes=f.MAX_PAYLOAD_BYTES)
    except (f.FormatError, UnicodeError):
        return None
    payload = doc.get("Payload")
    return f.time_from_unix(payload.get("integratedTime")) if isinstance(payload, dict) else None


def _verify_layer(
    layer: Descriptor,
    fmt: Format,
    subject: Digest,
    read_blob: BlobReader,
    keys: Mapping[str, PublicKey],
    created: str | None,
) -> VerificationResult:
    annotations = layer.annotations or {}
    has_cert = f.ANNOTATION_CERTIFICATE in annotations
    bundle = annotations.get(f.ANNOTATION_BUNDLE)
    failed = VerificationResult(None, False, fmt, None, "", certificate=has_cert, rekor_bundle=bundle is not None)
    if layer.media_type != f.SIMPLE_SIGNING:
        return replace(failed, reason=f"layer {layer.media_type[:100]!r} is not a simple-signing payload")
    if f.ANNOTATION_SIGNATURE not in annotations:
        return replace(failed, reason=f"the layer has no {f.ANNOTATION_SIGNATURE} annotation")
    try:
        signature = f.decode_b64(annotations[f.ANNOTATION_SIGNATURE], max_chars=MAX_SIGNATURE_CHARS)
    except f.FormatError as exc:
        return replace(failed, reason=f"the signature annotation {exc}")
    if layer.size > f.MAX_PAYLOAD_BYTES:
        return replace(failed, reason=f"the payload is larger than {f.MAX_PAYLOAD_BYTES // 1024} KiB")
    payload = _read(read_blob, layer)
    if not isinstance(payload, bytes):
        return replace(failed, reason=f"the payload blob {payload or 'is missing'}")
    signer = _signer(keys, lambda key: _verifies(key, signature, payload))
    if signer is None:
        extra = (
            " (a certificate is attached: keyless signatures are verified from Sigstore bundles, which carry the"
            " transparency-log inclusion proof this layout lacks)"
            if has_cert
            else ""
        )
        return replace(failed, reason=f"the signature does not verify with any trusted key{extra}")
    failed = replace(failed, key_id=signer)
    try:
        claimed, signed_at = _simple_signing_claims(payload)
    except f.FormatError as exc:
        return replace(failed, reason=f"the signed payload {exc}")
    if claimed != str(subject):
        return replace(failed, reason=f"the signed payload is for {claimed[:140]!r}, not {subject}")
    when = signed_at or (_rekor_time(bundle) if bundle is not None else None) or f.time_from_rfc3339(created)
    note = "; its Rekor bundle is not checked" if bundle is not None else ""
    return replace(failed, verified=True, signed_at=when, reason=f"signed by a trusted key{note}")


def _verify_simple_signing(
    parsed: ParsedManifest, fmt: Format, subject: Digest, read_blob: BlobReader, keys: Mapping[str, PublicKey]
) -> list[VerificationResult]:
    if not parsed.layers:
        return [VerificationResult(None, False, fmt, None, "the signature manifest has no layers")]
    created = parsed.annotations.get(f.ANNOTATION_CREATED)
    results = [_verify_layer(layer, fmt, subject, read_blob, keys, created) for layer in parsed.layers[:MAX_SIGNATURES]]
    if len(parsed.layers) > MAX_SIGNATURES:
        skipped = len(parsed.layers) - MAX_SIGNATURES
        results.append(VerificationResult(None, False, fmt, None, f"{skipped} more layers were not checked"))
    return results


# -- Sigstore bundles -----------------------------------------------------------------------------------------------


def _hint_key_id(hint: object) -> str | None:
    """cosign's hint is base64(SHA-256(SPKI DER)), i.e. our key id in base64; other hints are opaque."""
    try:
        raw = f.decode_b64(hint, max_chars=64)
    except f.FormatError:
        return None
    return raw.hex() if len(raw) == hashlib.sha256().digest_size else None


def _verify_dsse(
    envelope: object, subject: Digest, keys: Mapping[str, PublicKey], hint: str | None, base: VerificationResult
) -> list[VerificationResult]:
    if not isinstance(envelope, dict):
        return [replace(base, reason="the bundle's dsseEnvelope is not an object")]
    payload_type = envelope.get("payloadType")
    if payload_type != f.IN_TOTO:
        return [replace(base, reason=f"the DSSE payload type {str(payload_type)[:100]!r} is not in-toto")]
    try:
        payload = f.decode_b64(envelope.get("payload"), max_chars=MAX_B64_PAYLOAD_CHARS, urlsafe=True)
    except f.FormatError as exc:
        return [replace(base, reason=f"the DSSE payload {exc}")]
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return [replace(base, reason="the DSSE envelope has no signatures")]
    message = f.dsse_pae(payload_type, payload)
    results = []
    for entry in signatures[:MAX_SIGNATURES]:
        try:
            raw = entry.get("sig") if isinstance(entry, dict) else None
            signature = f.decode_b64(raw, max_chars=MAX_SIGNATURE_CHARS, urlsafe=True)
        except f.FormatError as exc:
            results.append(replace(base, reason=f"the DSSE signature {exc}"))
            continue
        signer = _signer(keys, partial(_verifies, signature=signature, message=message), hint)
        if signer is None:
            results.append(replace(base, reason="the DSSE signature does not verify with any trusted key"))
            continue
        try:
            problem = f.statement_problem(payload, subject.algorithm, subject.hex)
        except f.FormatError as exc:
            problem = f"the signed statement {exc}"
        if problem is not None:
            results.append(replace(base, key_id=signer, reason=problem))
        else:
            note = "; its transparency-log entry is not checked" if base.rekor_bundle else ""
            results.append(replace(base, key_id=signer, verified=True, reason=f"signed by a trusted key{note}"))
    return results


def _verify_message_signature(
    content: object, subject: Digest, keys: Mapping[str, PublicKey], hint: str | None, base: VerificationResult
) -> VerificationResult:
    message_digest = content.get("messageDigest") if isinstance(content, dict) else None
    if not isinstance(content, dict) or not isinstance(message_digest, dict):
        return replace(base, reason="the bundle's messageSignature has no messageDigest")
    named = _MESSAGE_DIGESTS.get(str(message_digest.get("algorithm")))
    try:
        digest = f.decode_b64(message_digest.get("digest"), max_chars=256, urlsafe=True)
        signature = f.decode_b64(content.get("signature"), max_chars=MAX_SIGNATURE_CHARS, urlsafe=True)
    except f.FormatError as exc:
        return replace(base, reason=f"the message signature {exc}")
    if named is None or f"{named[0]}:{digest.hex()}" != str(subject):
        return replace(base, reason=f"the message signature is not over the image manifest {subject}")
    signer = _signer(keys, lambda key: _digest_verifies(key, signature, digest, named[1]), hint)
    if signer is None:
        return replace(base, reason="the message signature does not verify with any trusted key")
    return replace(base, key_id=signer, verified=True, reason="signed by a trusted key (message signature)")


def _verify_keyless(
    data: bytes, subject: Digest, keyless: KeylessTrust | None, base: VerificationResult
) -> VerificationResult:
    base = replace(base, certificate=True)
    if keyless is None:
        return replace(base, reason="keyless bundle (certificate): no Sigstore trusted root is configured")
    verdict = verify_keyless_bundle(data, subject.algorithm, subject.hex, keyless)
    return replace(
        base,
        key_id=verdict.identity_id,
        verified=verdict.verified,
        reason=verdict.reason,
        identity=verdict.signer,
        signed_at=verdict.signed_at or base.signed_at,
    )


def _verify_bundle(
    data: bytes, subject: Digest, keys: Mapping[str, PublicKey], created: str | None, keyless: KeylessTrust | None
) -> list[VerificationResult]:
    base = VerificationResult(None, False, "bundle", f.time_from_rfc3339(created), "")
    try:
        doc = f.load_json_object(data, max_bytes=f.MAX_BUNDLE_BYTES)
    except f.FormatError as exc:
        return [replace(base, reason=f"the bundle {exc}")]
    if not f.is_bundle_media_type(doc.get("mediaType")):
        return [replace(base, reason="the bundle's mediaType is not a Sigstore bundle media type")]
    material = doc.get("verificationMaterial")
    if not isinstance(material, dict):
        return [replace(base, reason="the bundle has no verificationMaterial")]
    entries = material.get("tlogEntries")
    if isinstance(entries, list) and entries:
        first = entries[0] if isinstance(entries[0], dict) else {}
        logged_at = f.time_from_unix(first.get("integratedTime"))
        base = replace(base, rekor_bundle=True, signed_at=logged_at or base.signed_at)
    if "certificate" in material or "x509CertificateChain" in material:
        return [_verify_keyless(data, subject, keyless, base)]
    public_key = material.get("publicKey")
    if not isinstance(public_key, dict):
        return [replace(base, reason="the bundle names neither a public key nor a certificate")]
    hint = _hint_key_id(public_key.get("hint"))
    base = replace(base, key_id=hint)
    if ("dsseEnvelope" in doc) == ("messageSignature" in doc):
        return [replace(base, reason="the bundle must hold exactly one of dsseEnvelope and messageSignature")]
    if "dsseEnvelope" in doc:
        return _verify_dsse(doc["dsseEnvelope"], subject, keys, hint, base)
    return [_verify_message_signature(doc["messageSignature"], subject, keys, hint, base)]


def _verify_bundle_manifest(
    parsed: ParsedManifest,
    subject: Digest,
    read_blob: BlobReader,
    keys: Mapping[str, PublicKey],
    keyless: KeylessTrust | None,
) -> list[VerificationResult]:
    created = parsed.annotations.get(f.ANNOTATION_CREATED)
    results: list[VerificationResult] = []
    for layer in parsed.layers[:MAX_BUNDLES]:
        failed = VerificationResult(None, False, "bundle", None, "")
        if not f.is_bundle_media_type(layer.media_type):
            results.append(replace(failed, reason=f"layer {layer.media_type[:100]!r} is not a Sigstore bundle"))
            continue
        if layer.size > f.MAX_BUNDLE_BYTES:
            results.append(replace(failed, reason=f"the bundle is larger than {f.MAX_BUNDLE_BYTES // 1024} KiB"))
            continue
        data = _read(read_blob, layer)
        if not isinstance(data, bytes):
            results.append(replace(failed, reason=f"the bundle blob {data or 'is missing'}"))
            continue
        results.extend(_verify_bundle(data, subject, keys, created, keyless))
    if len(parsed.layers) > MAX_BUNDLES:
        skipped = len(parsed.layers) - MAX_BUNDLES
        results.append(VerificationResult(None, False, "bundle", None, f"{skipped} more layers were not checked"))
    return results or [VerificationResult(None, False, "bundle", None, "the bundle manifest has no layers")]


# -- entry point ----------------------------------------------------------------------------------------------------


def _format_of(parsed: ParsedManifest) -> Format:
    if f.is_bundle_media_type(parsed.referrer_artifact_type) or any(
        f.is_bundle_media_type(layer.media_type) for layer in parsed.layers
    ):
        return "bundle"
    if parsed.referrer_artifact_type == f.COSIGN_SIG_ARTIFACT or parsed.subject is not None:
        return "referrer"
    return "cosign"


def verify_signature_manifest(
    manifest: bytes,
    media_type: str,
    subject_digest: str,
    read_blob: BlobReader,
    keys: Mapping[str, PublicKey],
    keyless: KeylessTrust | None = None,
) -> list[VerificationResult]:
    """Verify every signature a stored signature manifest carries for the image ``subject_digest``.

    ``media_type`` is the manifest's stored content type; ``read_blob(digest, size)`` returns a blob of the
    repository (None when absent) and is only called for blobs within the size caps (64 KiB payloads, 1 MiB
    bundles); ``keys`` maps key ids to trusted public keys; ``keyless`` is the trusted root and the identities
    keyless bundles are verified against (None: they are not verified). Never raises on bad input (see the module
    docstring).
    """
    fmt: Format = "cosign"
    try:
        subject = Digest.parse(subject_digest)
        parsed = parse_manifest(manifest, media_type)
        fmt = _format_of(parsed)
        if parsed.is_index:
            return [VerificationResult(None, False, fmt, None, "an index is not a signature manifest")]
        if parsed.subject is not None and parsed.subject.digest != subject:
            reason = f"the signature manifest's subject is {parsed.subject.digest}, not {subject}"
            return [VerificationResult(None, False, fmt, None, reason)]
        if fmt == "bundle":
            return _verify_bundle_manifest(parsed, subject, read_blob, keys, keyless)
        return _verify_simple_signing(parsed, fmt, subject, read_blob, keys)
    except DomainError as exc:
        return [VerificationResult(None, False, fmt, None, f"not a valid signature manifest: {exc.message[:200]}")]
    except RecursionError:
        return [VerificationResult(None, False, fmt, None, "not a valid signature manifest: nested too deeply")]
    except _ReadFailed as exc:
        raise exc.cause from None
    except Exception:
        # Fail closed: an unforeseen input must not turn into a 500 or, worse, into "verified".
        log.exception("signature verification failed unexpectedly for %s", subject_digest[:200])
        return [VerificationResult(None, False, fmt, None, "internal error while verifying (treated as not verified)")]
