"""Keyless signatures: Sigstore bundles whose signing certificate (Fulcio-style, short-lived) is trusted because it
chains to a CA of the admin's trusted root and names an identity the namespace trusts. Pure: no DB, no network.

A namespace trusts *identities* (``TrustedIdentity``): an OIDC issuer, matched exactly, and a subject pattern, a
regular expression that must match the whole of one of the certificate's subjects (SAN e-mail, URI or Sigstore
"other name") — cosign's ``--certificate-oidc-issuer`` and ``--certificate-identity-regexp``. The admin provides
the trusted root (``trusted_root.json``: Fulcio CAs, Rekor and CT log keys, timestamp authorities) as a file; it is
read at start and whenever it changes, never fetched.

Verification is sigstore-python's ``Verifier`` (the reference implementation of the Sigstore client spec): the
certificate chains to a trusted CA at a verified time (the transparency log's inclusion promise or an RFC 3161
timestamp), its embedded SCT verifies against a trusted CT log, the Rekor entry's inclusion proof, checkpoint and
promise verify against a trusted log key and match the bundle, and the signature verifies with the certificate's
key. On top of that, the signed content must be *this* image: a DSSE in-toto statement with cosign's signing
predicate and the manifest digest as subject, or a message signature over the manifest digest itself.

Contract: like ``dockyard.signing.verify``, bad input never raises; it yields "not verified" with a reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.x509 import (
    Certificate,
    ExtensionNotFound,
    ObjectIdentifier,
    OtherName,
    RFC822Name,
    SubjectAlternativeName,
    UniformResourceIdentifier,
)

from dockyard.signing import formats as f

if TYPE_CHECKING:  # sigstore takes ~0.5 s to import (TUF, securesystemslib): loaded when first needed
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier

__all__ = [
    "KeylessTrust",
    "KeylessVerdict",
    "TrustedIdentity",
    "certificate_identity",
    "compile_subject",
    "identity_id",
    "load_trusted_root",
    "verify_keyless_bundle",
]

log = logging.getLogger("dockyard.signing")

MAX_PATTERN_CHARS = 512
MAX_ISSUER_CHARS = 512
MAX_TRUSTED_ROOT_BYTES = 4 * 1024 * 1024
_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw UTF-8 bytes (Fulcio, deprecated)
_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
_SIGSTORE_OTHERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")


@dataclass(frozen=True, slots=True)
class TrustedIdentity:
    identity_id: str
    issuer: str
    subject: str  # a regular expression matched against the whole subject


@dataclass(frozen=True, slots=True)
class KeylessTrust:
    """What keyless signatures are verified against: the admin's trusted root and a namespace's identities."""

    root: TrustedRoot
    identities: tuple[TrustedIdentity, ...]
    _verifier: list[Verifier] = field(default_factory=list, compare=False, repr=False)

    def verifier(self) -> Verifier:
        from sigstore.verify import Verifier

        if not self._verifier:
            self._verifier.append(Verifier(trusted_root=self.root))
        return self._verifier[0]


@dataclass(frozen=True, slots=True)
class KeylessVerdict:
    identity_id: str | None  # the trusted identity that matched (None when none did)
    verified: bool
    reason: str
    signer: str | None = None  # the certificate's subject
    signed_at: datetime | None = None  # the verified time of signing (transparency log or timestamp authority)


def identity_id(issuer: str, subject: str) -> str:
    """A stable id for an (issuer, subject pattern) pair, shown where key ids are (``oidc-`` + 16 hex)."""
    return "oidc-" + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:16]


def compile_subject(pattern: str) -> re.Pattern[str]:
    """The compiled subject pattern; ``ValueError`` with a clear message when it is empty, too long or invalid."""
    if not pattern or len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"the subject pattern must be 1 to {MAX_PATTERN_CHARS} characters")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"the subject pattern is not a valid regular expression: {exc}") from None


def load_trusted_root(path: Path) -> tuple[TrustedRoot, str]:
    """The trusted root in ``path`` and the SHA-256 of its bytes; ``ValueError`` naming the problem."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the Sigstore trusted root {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TRUSTED_ROOT_BYTES:
        raise ValueError(f"the Sigstore trusted root {path} is larger than {MAX_TRUSTED_ROOT_BYTES // 1024} KiB")
    from sigstore.models import TrustedRoot

    try:
        root = TrustedRoot.from_file(str(path))
        root.get_fulcio_certs()  # raises when there is no usable certificate authority
    except Exception as exc:  # sigstore and its models raise several kinds for a bad file
        raise ValueError(f"{path} is not a usable Sigstore trusted root: {str(exc)[:300]}") from None
    return root, hashlib.sha256(data).hexdigest()


def certificate_identity(cert: Certificate) -> tuple[str | None, list[str]]:
    """The certificate's OIDC issuer (Fulcio's v2 extension, else v1) and its subjects (SAN values)."""
    issuer: str | None = None
    for oid, der in ((_ISSUER_V2, True), (_ISSUER_V1, False)):
        try:
            raw: bytes = cert.extensions.get_extension_for_oid(oid).value.value  # type: ignore[attr-defined]
        except ExtensionNotFound:
            continue
        issuer = _der_utf8(raw) if der else raw.decode("utf-8", "replace")
        if issuer is not None:
            break
    try:
        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
    except ExtensionNotFound:
        return issuer, []
    subjects = [*san.get_values_for_type(RFC822Name), *san.get_values_for_type(UniformResourceIdentifier)]
    for name in san.get_values_for_type(OtherName):
        value = _der_utf8(name.value) if name.type_id == _SIGSTORE_OTHERNAME else None
        if value is not None:  # Fulcio's username identities: a DER UTF8String
            subjects.append(value)
    return issuer, subjects


def _der_utf8(raw: bytes) -> str | None:
    """A DER UTF8String's text (short and long length forms); None when it is not one."""
    if len(raw) < 2 or raw[0] != 0x0C:
        return None
    length, offset = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(raw) < 2 + count:
            return None
        length, offset = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
    if len(raw) != offset + length:
        return None
    return raw[offset:].decode("utf-8", "replace")


class _IdentityPolicy:
    """sigstore's ``VerificationPolicy``: the certificate must name one of the trusted identities. Remembers which
    one matched (an instance serves one verification)."""

    def __init__(self, identities: tuple[TrustedIdentity, ...]) -> None:
        self.identities = identities
        self.matched: TrustedIdentity | None = None
        self.signer: str | None = None

    def verify(self, cert: Certificate) -> None:
        issuer, subjects = certificate_identity(cert)
        self.signer = subjects[0] if subjects else None
        for identity in self.identities:
            if issuer != identity.issuer:
                continue
            pattern = compile_subject(identity.subject)
            for subject in subjects:
                if pattern.fullmatch(subject):
                    self.matched, self.signer = identity, subject
                    return
        from sigstore.errors import VerificationError

        raise VerificationError(
            f"the certificate's identity ({', '.join(subjects)[:200] or 'no subject'}, issuer "
            f"{(issuer or 'none')[:200]}) is not one the namespace trusts"
        )


def _signed_at(bundle: Bundle) -> datetime | None:
    try:
        integrated = bundle.log_entry._inner.integrated_time
    except Exception:  # no transparency-log entry or an unusual one: no time to show
        return None
    return datetime.fromtimestamp(integrated, tz=UTC) if integrated else None


def verify_keyless_bundle(data: bytes, algorithm: str, hex_digest: str, trust: KeylessTrust) -> KeylessVerdict:
    """Whether the Sigstore bundle ``data`` (with a certificate) signs the image manifest ``algorithm:hex_digest``
    for one of ``trust``'s identities. Never raises on bad input."""
    if not trust.identities:
        return KeylessVerdict(None, False, "keyless signature: the namespace trusts no keyless identity")
    from sigstore.errors import Error as SigstoreError
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle
    from sigstore_models.common.v1 import HashAlgorithm

    try:
        bundle = Bundle.from_json(data)
    except Exception as exc:  # InvalidBundle, pydantic's ValidationError, ValueError…
        return KeylessVerdict(None, False, f"the keyless bundle is not valid: {str(exc).splitlines()[0][:200]}")
    policy = _IdentityPolicy(trust.identities)
    try:
        if bundle._dsse_envelope is not None:
            payload_type, payload = trust.verifier().verify_dsse(bundle, policy)
            if payload_type != f.IN_TOTO:
                problem: str | None = f"the DSSE payload type {payload_type[:100]!r} is not in-toto"
            else:
                try:
                    problem = f.statement_problem(payload, algorithm, hex_digest)
                except f.FormatError as exc:
                    problem = f"the signed statement {exc}"
        else:
            hash_algorithm = {
                "sha256": HashAlgorithm.SHA2_256,
                "sha384": HashAlgorithm.SHA2_384,
                "sha512": HashAlgorithm.SHA2_512,
            }.get(algorithm)
            if hash_algorithm is None:
                return KeylessVerdict(None, False, f"message signatures over {algorithm} digests are not supported")
            hashed = Hashed(algorithm=hash_algorithm, digest=bytes.fromhex(hex_digest))
            trust.verifier().verify_artifact(hashed, bundle, policy)
            problem = None
    except (SigstoreError, ExtensionNotFound, ValueError) as exc:
        # sigstore's errors (VerificationError, InvalidBundle, CertValidationError…) share a base; a certificate
        # without a required extension (EKU, key usage) surfaces as cryptography's ExtensionNotFound.
        identity = policy.matched.identity_id if policy.matched else None
        return KeylessVerdict(identity, False, f"keyless signature: {str(exc)[:300]}", policy.signer)
    except Exception:
        log.exception("keyless verification failed unexpectedly")
        return KeylessVerdict(None, False, "internal error while verifying (treated as not verified)")
    matched = policy.matched
    if matched is None:  # the policy ran and returned, so it matched; defensive
        return KeylessVerdict(None, False, "keyless signature: no trusted identity matched")
    if problem is not None:
        return KeylessVerdict(matched.identity_id, False, problem, policy.signer)
    reason = f"signed by {policy.signer} ({matched.issuer}), a trusted keyless identity"
    return KeylessVerdict(matched.identity_id, True, reason, policy.signer, _signed_at(bundle))
