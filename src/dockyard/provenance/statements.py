"""The documents a build attaches to its image, pure and without I/O: in-toto Statements v1 (an SPDX 2.3 SBOM, a
SLSA v1 provenance), their DSSE envelopes, and the OCI 1.1 referrer manifest that carries an envelope.

The referrer convention (``docs/builds.md#provenance``): an OCI image manifest with ``artifactType``
``application/vnd.dsse.envelope.v1+json``, the empty config (``application/vnd.oci.empty.v1+json``), one layer —
the DSSE envelope as JSON, media type ``application/vnd.dsse.envelope.v1+json`` — annotated with
``in-toto.io/predicate-type`` (the annotation BuildKit and the in-toto attestation tooling use), and the image as
``subject``. ``GET /v2/<name>/referrers/<digest>?artifactType=application/vnd.dsse.envelope.v1+json`` lists them,
with the predicate type in each descriptor's annotations (copied from the manifest's).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

from dockyard import __version__
from dockyard.builds.attestation import AttestInputs
from dockyard.inventory import referrers
from dockyard.signing import keys as signing_keys
from dockyard.signing.formats import DSSE_ENVELOPE, IN_TOTO, dsse_pae

STATEMENT_V1: Final = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1: Final = "https://slsa.dev/provenance/v1"
SPDX_DOCUMENT: Final = "https://spdx.dev/Document"
# What this buildType's parameters mean is documented in docs/builds.md#provenance (a URN: the project has no
# stable public URL to point at, and a type URI need only be unique and stable).
BUILD_TYPE: Final = "urn:dockyard:build-type:dockerfile:v1"
PREDICATE_ANNOTATION: Final = "in-toto.io/predicate-type"
CREATED_ANNOTATION: Final = "org.opencontainers.image.created"
BUILD_ANNOTATION: Final = "dev.dockyard.build"
EMPTY_CONFIG: Final = referrers.EMPTY_CONFIG


def _compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def statement(subject_name: str, digest: str, predicate_type: str, predicate: dict[str, Any]) -> bytes:
    """An in-toto Statement v1 about image manifest ``digest`` (``sha256:…``), named ``subject_name``
    (``host/ns/repo``)."""
    algorithm, _, encoded = digest.partition(":")
    return _compact(
        {
            "_type": STATEMENT_V1,
            "subject": [{"name": subject_name, "digest": {algorithm: encoded}}],
            "predicateType": predicate_type,
            "predicate": predicate,
        }
    )


def _oci_dependency(reference: str, digest: str) -> dict[str, Any]:
    algorithm, _, encoded = digest.partition(":")
    name = reference.split("@", 1)[0]
    return {
        "name": reference,
        "uri": f"oci://{name}@{digest}",
        "digest": {algorithm: encoded},
        "annotations": {"role": "base-image"},
    }


def slsa_predicate(inputs: AttestInputs, *, builder_id: str, invocation_id: str) -> dict[str, Any]:
    """The SLSA v1 provenance predicate of the build ``inputs`` describes (``buildType`` :data:`BUILD_TYPE`)."""
    source = {"repository": inputs.source_url, "ref": inputs.ref, "commit": inputs.commit}
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "source": source,
                "rule": {
                    "id": inputs.rule,
                    "source_type": inputs.source_type,
                    "source_name": inputs.source_name,
                    "tag": inputs.tag_template,
                },
                "dockerfile": inputs.dockerfile,
                "context": inputs.context,
                "build_args": list(inputs.build_args),
                "tags": list(inputs.tags),
            },
            "internalParameters": {
                "executor": inputs.executor,
                "network": inputs.network,
                "cache": inputs.cache,
            },
            "resolvedDependencies": [
                {"uri": f"git+{inputs.source_url}@{inputs.ref}", "digest": {"gitCommit": inputs.commit}},
                *(_oci_dependency(reference, digest) for reference, digest in inputs.base_images),
            ],
        },
        "runDetails": {
            "builder": {"id": builder_id, "version": {"dockyard": __version__}},
            "metadata": {
                "invocationId": invocation_id,
                "startedOn": inputs.started_on,
                "finishedOn": inputs.finished_on,
            },
        },
    }


def envelope(payload: bytes, private_key: signing_keys.PrivateKey | None) -> bytes:
    """The DSSE envelope of an in-toto statement, signed over its PAE with ``private_key`` (``keyid`` = the key's
    SHA-256 id as Dockyard shows it); no signatures without a key."""
    signatures = []
    if private_key is not None:
        signature = signing_keys.sign(private_key, dsse_pae(IN_TOTO, payload))
        kid = signing_keys.key_id(private_key.public_key())
        signatures.append({"keyid": kid, "sig": base64.b64encode(signature).decode()})
    return _compact({"payloadType": IN_TOTO, "payload": base64.b64encode(payload).decode(), "signatures": signatures})


def referrer_manifest(
    subject: dict[str, Any], envelope_bytes: bytes, predicate_type: str, *, created: str, build: str
) -> bytes:
    """The OCI image manifest that attaches ``envelope_bytes`` to ``subject`` (a descriptor: mediaType, digest,
    size): ``dockyard.inventory.referrers.referrer_manifest`` with this convention's types and annotations. Its
    config (``{}``) and layer (the envelope) must be pushed as blobs first."""
    annotations = {PREDICATE_ANNOTATION: predicate_type, CREATED_ANNOTATION: created, BUILD_ANNOTATION: build}
    return referrers.referrer_manifest(
        subject,
        DSSE_ENVELOPE,
        DSSE_ENVELOPE,
        envelope_bytes,
        layer_annotations={PREDICATE_ANNOTATION: predicate_type},
        annotations=annotations,
    )
