"""Cosign and Sigstore formats as they sit in a registry, and strict decoders for their untrusted parts.

Owns: the media types, artifact types and annotation keys cosign, skopeo and Sigstore bundles use; the tag scheme
(``sha256:<hex>`` → ``sha256-<hex>.sig``); which manifests are signature-like artifacts that stay readable under an
``enforce`` policy; and the small decoders the verifier applies to attacker-controlled bytes (size-capped JSON
without duplicate keys, base64, DSSE pre-authentication encoding, timestamps). Pure: no I/O, no crypto.

Sources: cosign ``specs/SIGNATURE_SPEC.md`` and ``specs/BUNDLE_SPEC.md``; cosign v3 ``cmd/cosign/cli/sign/sign.go``
(``signDigestBundle``: an in-toto statement, predicate ``https://sigstore.dev/cosign/sign/v1``, in a DSSE envelope);
``pkg/oci/remote/write.go`` (referrers-mode signatures put the artifact type in ``config.mediaType``).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from dockyard.core import mediatypes as mt
from dockyard.core.jsonparse import loads_limited
from dockyard.errors import Invalid

__all__ = [
    "ANNOTATION_BUNDLE",
    "ANNOTATION_CERTIFICATE",
    "ANNOTATION_CHAIN",
    "ANNOTATION_CREATED",
    "ANNOTATION_SIGNATURE",
    "COSIGN_SIGN_PREDICATE",
    "COSIGN_SIG_ARTIFACT",
    "IMAGE_SIGNATURE_ARTIFACT_TYPES",
    "IN_TOTO",
    "MAX_BUNDLE_BYTES",
    "MAX_PAYLOAD_BYTES",
    "SIGSTORE_BUNDLE_V03",
    "SIMPLE_SIGNING",
    "SIMPLE_SIGNING_TYPE",
    "FormatError",
    "decode_b64",
    "dsse_pae",
    "is_bundle_media_type",
    "is_signature_artifact",
    "is_signature_push",
    "load_json_object",
    "lookup",
    "signature_tag",
    "signed_digest_of_push",
    "signed_digest_of_tag",
    "statement_problem",
    "time_from_rfc3339",
    "time_from_unix",
]

# Payloads and artifacts.
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIMPLE_SIGNING_TYPE = "cosign container image signature"
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_ATT_ARTIFACT = "application/vnd.dev.cosign.artifact.att.v1+json"
COSIGN_SBOM_ARTIFACT = "application/vnd.dev.cosign.artifact.sbom.v1+json"
SIGSTORE_BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO_STATEMENT_TYPES = frozenset({"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"})

# Layer annotations of the tag scheme (cosign writes the first under the old project name).
# The artifact types of image signatures as referrers (not attestations or SBOMs): what a verifier looks for.
IMAGE_SIGNATURE_ARTIFACT_TYPES = (COSIGN_SIG_ARTIFACT, SIGSTORE_BUNDLE_V03)

ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"
ANNOTATION_CREATED = "org.opencontainers.image.created"

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_BUNDLE_BYTES = 1024 * 1024
MAX_STATEMENT_SUBJECTS = 64  # subjects of an in-toto statement looked at

# Referrer artifact types that are signatures, attestations or SBOMs (clients must be able to fetch them).
_SIGNATURE_ARTIFACT_TYPES = frozenset(
    {
        COSIGN_SIG_ARTIFACT,
        COSIGN_ATT_ARTIFACT,
        COSIGN_SBOM_ARTIFACT,
        DSSE_ENVELOPE,
        IN_TOTO,
        "application/vnd.cncf.notary.signature",
        "application/spdx+json",
        "text/spdx",
        "text/spdx+json",
        "application/vnd.cyclonedx+json",
        "application/vnd.cyclonedx+xml",
        "application/vnd.syft+json",
    }
)
_BUNDLE_TYPE_RE = re.compile(
    r"^application/vnd\.dev\.sigstore\.bundle(\.v0\.[0-9]+\+json|\+json;\s*version=0\.[0-9]+)$"
)
_DIGEST_TAG = r"(sha256)-([0-9a-f]{64})|(sha512)-([0-9a-f]{128})"
_ATTACHMENT_TAG_RE = re.compile(rf"^(?:{_DIGEST_TAG})\.(sig|att|sbom)$")
_REFERRERS_TAG_RE = re.compile(rf"^(?:{_DIGEST_TAG})$")
# What signature, attestation and SBOM artifacts carry as layers. Anything else (a filesystem layer, a Wasm module)
# could be run: such an artifact is not exempt from the policy, whatever its tag or artifact type says.
_ATTACHMENT_LAYER_TYPES = frozenset(
    {
        SIMPLE_SIGNING,
        DSSE_ENVELOPE,
        IN_TOTO,
        mt.OCI_EMPTY,
        "application/jose+json",  # Notary Project signatures
        "application/cose",
        "text/spdx",
        "text/spdx+json",
        "spdx+json",  # cosign attach sbom --type spdxjson
        "application/spdx+json",
        "application/vnd.cyclonedx",
        "application/vnd.cyclonedx+json",
        "application/vnd.cyclonedx+xml",
        "application/vnd.syft+json",
    }
)


class FormatError(ValueError):
    """Untrusted input does not have the expected form; the message is a short reason fit for a user."""


def signature_tag(digest: str) -> str:
    """The cosign tag-scheme tag of ``digest``: ``sha256:abc`` → ``sha256-abc.sig``."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not algorithm or not encoded or "-" in algorithm:
        raise Invalid("digest", f"invalid digest {digest[:200]!r}")
    return f"{algorithm}-{encoded}.sig"


def signed_digest_of_tag(tag: str) -> str | None:
    """The digest a tag-scheme tag (``.sig``, ``.att``, ``.sbom``) attaches to, else None."""
    match = _ATTACHMENT_TAG_RE.match(tag)
    if match is None:
        return None
    algorithm = match.group(1) or match.group(3)
    encoded = match.group(2) or match.group(4)
    return f"{algorithm}:{encoded}"


def is_signature_push(artifact_type: object, tags: Sequence[str]) -> bool:
    """Whether a pushed manifest — its artifact type and the tags the push set, as its ``manifest.pushed`` event
    records them — is an image signature: a cosign or Sigstore-bundle signature referrer, or a manifest tagged only
    in cosign's ``sha256-<hex>.sig`` scheme (as skopeo and cosign's tag mode push them)."""
    return artifact_type in IMAGE_SIGNATURE_ARTIFACT_TYPES or (bool(tags) and all(t.endswith(".sig") for t in tags))


def signed_digest_of_push(subject: object, tags: Iterable[str]) -> str | None:
    """The digest a pushed signature signs: its ``subject`` (a referrer), else the digest its ``.sig`` tag names."""
    signed = subject or next(filter(None, map(signed_digest_of_tag, tags)), None)
    return signed if isinstance(signed, str) else None


def is_bundle_media_type(value: object) -> bool:
    """A Sigstore bundle media type (v0.3 form, or the older ``+json;version=0.x`` form)."""
    return isinstance(value, str) and _BUNDLE_TYPE_RE.match(value) is not None


def is_signature_artifact(
    media_type: str,
    artifact_type: str | None,
    tag: str | None,
    *,
    layer_media_types: Iterable[str] | None = None,
) -> bool:
    """True for signatures, attestations and SBOMs (tag scheme or referrers) — they stay readable under ``enforce``.

    ``artifact_type`` is what the referrers API reports (``artifactType``, else ``config.mediaType``); ``tag`` is the
    tag the manifest is fetched by, if any. Whoever pushes chooses tags and artifact types, so callers must pass
    ``layer_media_types`` to close the bypass "push any image as ``sha256-<hex>.sig``": with them, every layer must be
    of a signature, attestation or SBOM type. The referrers fallback index (an index tagged ``sha256-<hex>``) counts
    too: it only lists referrers, and what it lists is judged on its own. A manifest of one or more layers that are
    all such payloads is one too, however it is fetched and whatever its artifact type.
    """
    kind = mt.strip_parameters(media_type)
    if kind in mt.INDEXES:
        return tag is not None and _REFERRERS_TAG_RE.match(tag) is not None
    if kind not in mt.IMAGE_MANIFESTS:
        return False
    layers = None if layer_media_types is None else list(layer_media_types)
    if layers is not None and not all(
        layer in _ATTACHMENT_LAYER_TYPES or is_bundle_media_type(layer) for layer in layers
    ):
        return False
    if tag is not None and _ATTACHMENT_TAG_RE.match(tag):
        return True
    if layers:
        # E.g. a tag-scheme signature fetched by digest (``/manifests/<digest>``, ``/blobs/<digest>``): payload
        # layers only, nothing a runtime could unpack.
        return True
    return artifact_type is not None and (
        artifact_type in _SIGNATURE_ARTIFACT_TYPES or is_bundle_media_type(artifact_type)
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Parsers disagree on which duplicate wins; a signed document with one is ambiguous.
            raise FormatError(f"has a duplicate key {key[:40]!r}")
        result[key] = value
    return result


def load_json_object(data: bytes, *, max_bytes: int) -> dict[str, Any]:
    """Parse ``data`` as one UTF-8 JSON object of at most ``max_bytes``; duplicate keys are an error."""
    if len(data) > max_bytes:
        raise FormatError(f"is larger than {max_bytes // 1024} KiB")
    try:
        doc = loads_limited(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except FormatError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, int too long, deep nesting
        raise FormatError("is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise FormatError("is not a JSON object")
    return doc


def lookup(doc: dict[str, Any], key: str) -> Any:
    """``doc[key]`` matching the key case-insensitively, as Go's JSON decoder does (cosign writes
    ``docker-manifest-digest``, its spec shows ``Docker-manifest-digest``); two spellings at once are an error."""
    found = [name for name in doc if name.lower() == key.lower()]
    if len(found) > 1:
        raise FormatError(f"has {key!r} more than once")
    return doc[found[0]] if found else None


def decode_b64(value: object, *, max_chars: int, urlsafe: bool = False) -> bytes:
    """Strict standard base64 (and, with ``urlsafe``, the URL-safe alphabet, padded or not, as protobuf JSON allows)."""
    if not isinstance(value, str):
        raise FormatError("is not a base64 string")
    if not value:
        raise FormatError("is empty")
    if len(value) > max_chars:
        raise FormatError(f"is longer than {max_chars} characters")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        if not urlsafe:
            raise FormatError("is not valid base64") from None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except ValueError:
        raise FormatError("is not valid base64") from None


def statement_problem(payload: bytes, algorithm: str, hex_digest: str) -> str | None:
    """Why a signed DSSE payload is not a cosign image signature of ``algorithm:hex_digest`` (None when it is):
    an in-toto statement with cosign's signing predicate and that digest among its subjects. Raises
    ``FormatError`` when the payload is not a JSON object."""
    statement = load_json_object(payload, max_bytes=MAX_BUNDLE_BYTES)
    kind = statement.get("_type")
    if not isinstance(kind, str) or kind not in IN_TOTO_STATEMENT_TYPES:
        return "the signed payload is not an in-toto statement"
    predicate_type = statement.get("predicateType")
    if predicate_type != COSIGN_SIGN_PREDICATE:
        return f"the statement is an attestation ({str(predicate_type)[:100]!r}), not an image signature"
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "the statement has no subject"
    for entry in subjects[:MAX_STATEMENT_SUBJECTS]:
        digests = entry.get("digest") if isinstance(entry, dict) else None
        if isinstance(digests, dict) and digests.get(algorithm) == hex_digest:
            return None
    return f"the statement's subject is not {algorithm}:{hex_digest}"


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature signs."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


_MAX_UNIX = 253402300799  # 9999-12-31T23:59:59Z


def time_from_unix(value: object) -> datetime | None:
    """Seconds since the epoch (a JSON integer, or a decimal string as protobuf JSON writes int64), else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= _MAX_UNIX:
        return None
    return datetime.fromtimestamp(value, UTC)


def time_from_rfc3339(value: object) -> datetime | None:
    """An RFC 3339 time (``org.opencontainers.image.created``), in UTC; None when absent or malformed."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # malformed, or an offset that pushes it past year 1 or 9999
        return None
