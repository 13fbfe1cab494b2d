"""An offline stand-in for Sigstore's public-good services — a Fulcio-like CA, a certificate-transparency log and a
Rekor v1 transparency log — so tests can make keyless cosign signatures without a network.

``FakeSigstore`` owns the keys. ``trusted_root_json()`` is the trusted-root document an admin would give Dockyard;
``issue_certificate()`` is a Fulcio leaf (OIDC identity in the SAN, issuer extensions, an embedded SCT over the
precertificate); ``keyless_bundle()`` is the Sigstore bundle v0.3 that cosign v3's keyless ``cosign sign`` attaches
to an image: a DSSE envelope around an in-toto statement, logged as a ``dsse`` 0.0.1 entry in an in-memory RFC 6962
Merkle tree with a signed checkpoint and an inclusion promise. ``tamper=`` and the ``ca``/``ct_key``/``certificate``
arguments make the broken variants a verifier must refuse. Only ``cryptography`` and the standard library."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # the issuer as raw bytes (what policy.Identity reads)
OIDC_ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # the issuer as a DER UTF8String
CA_VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
CA_VALID_UNTIL = datetime(2100, 1, 1, tzinfo=UTC)
IDENTITY = "signer@example.test"
ISSUER = "https://issuer.example.test"

SanKind = Literal["email", "uri"]
Tamper = Literal["payload", "signature", "log-body", "set", "checkpoint", "proof"]
"""``payload``: the envelope's payload swapped after signing; ``signature``: the envelope (and its log entry) signed
by a key other than the certificate's; ``log-body``: the log entry records another payload; ``set``: the inclusion
promise signed by another key; ``checkpoint``: the checkpoint signed by another key; ``proof``: a wrong Merkle path."""

_ORDERS = {  # group orders, to turn a seed into a valid private scalar
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """RFC 6962 key ID: SHA-256 of the DER SubjectPublicKeyInfo (Rekor's and the CT log's log ID)."""
    return hashlib.sha256(_spki(key)).digest()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the envelope's signature covers."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type.encode(), len(payload), payload)


def cosign_statement(image_digest: str, *, name: str | None = None) -> bytes:
    """The in-toto statement cosign v3 signs for an image (``protojson`` of ``signDigestBundle``'s statement: the
    subject has no name and empty annotations); ``name`` adds a subject name as other tools write it."""
    algorithm, _, encoded = image_digest.partition(":")
    subject: dict[str, Any] = {"name": name} if name is not None else {}
    subject |= {"digest": {algorithm: encoded}, "annotations": {}}
    doc = {"_type": STATEMENT_TYPE, "subject": [subject], "predicateType": COSIGN_SIGN_PREDICATE, "predicate": {}}
    return json.dumps(doc, separators=(",", ":")).encode()


def _spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _canonical(doc: Any) -> bytes:
    """RFC 8785 for the documents made here (ASCII strings and integers): sorted keys, no whitespace."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = (
        bytes([n]) if n < 0x80 else bytes([0x80 | (n.bit_length() + 7) // 8]) + n.to_bytes((n.bit_length() + 7) // 8)
    )
    return bytes([tag]) + length + content


def _sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def _key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# -- RFC 6962 Merkle trees ---------------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (RFC 6962 §2.1)."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), lowest level first — the order sigstore's ``verify_merkle_inclusion`` expects."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*inclusion_path(index, leaves[:k]), merkle_root(leaves[k:])]
    return [*inclusion_path(index - k, leaves[k:]), merkle_root(leaves[:k])]


# -- the services ------------------------------------------------------------------------------------------------


class CertificateAuthority(NamedTuple):
    """A Fulcio-like CA: ``key`` signs leaves; ``chain`` is its certificate first and the self-signed root last."""

    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]


class FakeSigstore:
    """Keys and state of a fake Sigstore instance: a CA (P-384 root, optionally a P-384 intermediate), a CT log key
    and a Rekor key (both P-256, as the public-good instance's), and the Rekor log's leaves. The same ``seed`` gives
    the same keys (certificates still differ: ECDSA signatures are randomized); no seed, fresh keys."""

    def __init__(self, *, seed: str | None = None, intermediate: bool = False, name: str = "fake") -> None:
        self._seed = seed
        self.name = name
        self.rekor_origin = f"rekor.{name}.test - 1193050959916656506"
        self.ct_key = self._key("ctlog", ec.SECP256R1())
        self.rekor_key = self._key("rekor", ec.SECP256R1())
        root_key = self._key("root", ec.SECP384R1())
        root = _ca_certificate(f"{name}-fulcio-root", root_key, None, 1)
        self.ca = CertificateAuthority(root_key, (root,))
        if intermediate:
            key = self._key("intermediate", ec.SECP384R1())
            self.ca = CertificateAuthority(key, (_ca_certificate(f"{name}-fulcio-intermediate", key, self.ca, 0), root))
        # A few unrelated entries first, so that inclusion proofs are not empty.
        self.log: list[bytes] = [leaf_hash(b"filler %d" % i) for i in range(3)]

    def _key(self, label: str, curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
        if self._seed is None:
            return ec.generate_private_key(curve)
        order = _ORDERS[curve.name]
        secret = int.from_bytes(hashlib.sha512(f"{self._seed}/{label}".encode()).digest()) % (order - 1) + 1
        return ec.derive_private_key(secret, curve)

    # -- the trusted root --------------------------------------------------------------------------------------

    def trusted_root(self) -> dict[str, Any]:
        """The ``application/vnd.dev.sigstore.trustedroot+json;version=0.1`` document (protobuf-specs JSON)."""

        def log(url: str, key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            public = key.public_key()
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(_spki(public)),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": CA_VALID_FROM.strftime("%Y-%m-%dT%H:%M:%SZ")},
                },
                "logId": {"keyId": b64(key_id(public))},
            }

        der = [b64(cert.public_bytes(serialization.Encoding.DER)) for cert in self.ca.chain]
        authority = {
            "subject": {"organization": f"{self.name}.test", "commonName": f"{self.name}-fulcio"},
            "uri": f"https://fulcio.{self.name}.test",
            "certChain": {"certificates": [{"rawBytes": raw} for raw in der]},
            "validFor": {"start": CA_VALID_FROM.strftime("%Y-%m-%dT%H:%M:%SZ")},
        }
        return {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [log(f"https://rekor.{self.name}.test", self.rekor_key)],
            "certificateAuthorities": [authority],
            "ctlogs": [log(f"https://ctfe.{self.name}.test/test", self.ct_key)],
            "timestampAuthorities": [],
        }

    def trusted_root_json(self) -> bytes:
        return json.dumps(self.trusted_root(), indent=2).encode()

    # -- Fulcio ------------------------------------------------------------------------------------------------

    def issue_certificate(
        self,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        *,
        san_kind: SanKind = "email",
        valid_for: timedelta = timedelta(minutes=10),
        not_before: datetime | None = None,
        ca: CertificateAuthority | None = None,
        ct_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """An ephemeral P-256 key and its Fulcio-style certificate (valid from ``not_before``, default now), issued
        by ``ca`` (default this instance's; another instance's ``ca`` makes an untrusted one) with an SCT from
        ``ct_key`` (default this instance's CT log)."""
        ca = ca or self.ca
        key = ec.generate_private_key(ec.SECP256R1())
        start = (not_before or datetime.now(UTC)).replace(microsecond=0)
        san: x509.GeneralName = (
            x509.RFC822Name(identity) if san_kind == "email" else x509.UniformResourceIdentifier(identity)
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca.chain[0].subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + valid_for)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_OID, issuer.encode()), critical=False)
            .add_extension(x509.UnrecognizedExtension(OIDC_ISSUER_V2_OID, _der(0x0C, issuer.encode())), critical=False)
        )
        # The final certificate's TBS minus the SCT list extension is exactly this precertificate's TBS.
        precert = builder.sign(ca.key, hashes.SHA384())
        scts = self._sct_list(precert.tbs_certificate_bytes, ca.key.public_key(), ct_key or self.ct_key, start)
        sct_extension = x509.UnrecognizedExtension(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, _der(0x04, scts))
        return key, builder.add_extension(sct_extension, critical=False).sign(ca.key, hashes.SHA384())

    @staticmethod
    def _sct_list(
        tbs: bytes, issuer: ec.EllipticCurvePublicKey, ct_key: ec.EllipticCurvePrivateKey, when: datetime
    ) -> bytes:
        """A one-SCT SignedCertificateTimestampList (RFC 6962 §3.2-3.3) for a precert entry."""
        millis = int(when.timestamp() * 1000)
        signed = struct.pack("!BBQH", 0, 0, millis, 1) + key_id(issuer) + len(tbs).to_bytes(3) + tbs + b"\0\0"
        signature = _sign(ct_key, signed)
        sct = struct.pack("!B32sQHBBH", 0, key_id(ct_key.public_key()), millis, 0, 4, 3, len(signature)) + signature
        return struct.pack("!HH", len(sct) + 2, len(sct)) + sct

    # -- Rekor -------------------------------------------------------------------------------------------------

    def log_entry(
        self, body: bytes, kind: str, *, integrated_time: datetime | None = None, tamper: Tamper | None = None
    ) -> dict[str, Any]:
        """Append ``body`` to the log; its ``tlogEntries`` item with an inclusion promise and an inclusion proof."""
        stranger = ec.generate_private_key(ec.SECP256R1())
        index = len(self.log)
        self.log.append(leaf_hash(body))
        root, path = merkle_root(self.log), inclusion_path(index, self.log)
        if tamper == "proof":
            path[0] = hashlib.sha256(path[0]).digest()
        log_id = key_id(self.rekor_key.public_key())
        when = int((integrated_time or datetime.now(UTC)).timestamp())
        promise = {"body": b64(body), "integratedTime": when, "logID": log_id.hex(), "logIndex": index}
        note = f"{self.rekor_origin}\n{len(self.log)}\n{b64(root)}\n"
        note_signature = _sign(stranger if tamper == "checkpoint" else self.rekor_key, note.encode())
        checkpoint = f"{note}\n\u2014 rekor.{self.name}.test {b64(log_id[:4] + note_signature)}\n"
        return {
            "logIndex": str(index),
            "logId": {"keyId": b64(log_id)},
            "kindVersion": {"kind": kind, "version": "0.0.1"},
            "integratedTime": str(when),
            "inclusionPromise": {
                "signedEntryTimestamp": b64(_sign(stranger if tamper == "set" else self.rekor_key, _canonical(promise)))
            },
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": b64(root),
                "treeSize": str(len(self.log)),
                "hashes": [b64(h) for h in path],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": b64(body),
        }

    # -- what cosign writes ------------------------------------------------------------------------------------

    def keyless_bundle(
        self,
        image_digest: str,
        *,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        san_kind: SanKind = "email",
        subject_digest: str | None = None,
        subject_name: str | None = None,
        certificate: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
        integrated_time: datetime | None = None,
        tamper: Tamper | None = None,
    ) -> dict[str, Any]:
        """The bundle cosign v3's keyless ``cosign sign`` (new bundle format) attaches to ``image_digest``: a DSSE
        envelope around ``cosign_statement`` and a ``dsse`` 0.0.1 Rekor entry. ``subject_digest`` signs a statement
        about another image; ``certificate`` replaces the one issued for ``identity``/``issuer``."""
        key, cert = certificate or self.issue_certificate(identity, issuer, san_kind=san_kind)
        payload = cosign_statement(subject_digest or image_digest, name=subject_name)
        signer = ec.generate_private_key(ec.SECP256R1()) if tamper == "signature" else key
        signature = _sign(signer, pae(IN_TOTO_PAYLOAD_TYPE, payload))
        envelope = {
            "payload": b64(payload),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": b64(signature)}],
        }
        logged_payload = payload + b" " if tamper == "log-body" else payload
        spec = {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(_canonical(envelope)).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(logged_payload).hexdigest()},
            "signatures": [
                {"signature": b64(signature), "verifier": b64(cert.public_bytes(serialization.Encoding.PEM))}
            ],
        }
        body = _canonical({"apiVersion": "0.0.1", "kind": "dsse", "spec": spec})
        if tamper == "payload":
            other = "sha256:" + hashlib.sha256(image_digest.encode()).hexdigest()
            envelope["payload"] = b64(cosign_statement(other, name=subject_name))
        entry = self.log_entry(body, "dsse", integrated_time=integrated_time, tamper=tamper)
        return _bundle(cert, entry, dsseEnvelope=envelope)

    def message_signature_bundle(
        self,
        artifact: bytes,
        *,
        identity: str = IDENTITY,
        issuer: str = ISSUER,
        certificate: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
        integrated_time: datetime | None = None,
        tamper: Tamper | None = None,
    ) -> dict[str, Any]:
        """A ``cosign sign-blob --bundle`` bundle: a message signature over ``artifact``, a ``hashedrekord`` entry."""
        key, cert = certificate or self.issue_certificate(identity, issuer)
        digest = hashlib.sha256(artifact).digest()
        signer = ec.generate_private_key(ec.SECP256R1()) if tamper == "signature" else key
        signature = _sign(signer, artifact)
        logged = hashlib.sha256(artifact + b" ").digest() if tamper == "log-body" else digest
        spec = {
            "data": {"hash": {"algorithm": "sha256", "value": logged.hex()}},
            "signature": {
                "content": b64(signature),
                "publicKey": {"content": b64(cert.public_bytes(serialization.Encoding.PEM))},
            },
        }
        body = _canonical({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": spec})
        entry = self.log_entry(body, "hashedrekord", integrated_time=integrated_time, tamper=tamper)
        message = {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)}, "signature": b64(signature)}
        return _bundle(cert, entry, messageSignature=message)


def _bundle(cert: x509.Certificate, entry: dict[str, Any], **content: Any) -> dict[str, Any]:
    material = {
        "certificate": {"rawBytes": b64(cert.public_bytes(serialization.Encoding.DER))},
        "tlogEntries": [entry],
        "timestampVerificationData": {},
    }
    return {"mediaType": BUNDLE_MEDIA_TYPE, "verificationMaterial": material, **content}


def _ca_certificate(
    common_name: str, key: ec.EllipticCurvePrivateKey, parent: CertificateAuthority | None, path_length: int
) -> x509.Certificate:
    """A CA certificate like Fulcio's: self-signed when ``parent`` is None, else issued by it."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    issuer_key = parent.key if parent else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(parent.chain[0].subject if parent else subject)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(hashlib.sha256(_spki(key.public_key())).digest()[:16]) >> 1)
        .not_valid_before(CA_VALID_FROM)
        .not_valid_after(CA_VALID_UNTIL)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if parent:  # Fulcio's intermediate is limited to code signing
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.sign(issuer_key, hashes.SHA384())
