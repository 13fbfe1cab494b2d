"""The attestation documents of a build: in-toto statements, DSSE envelopes verified with ``cryptography`` over a
PAE written out here, the SLSA v1 predicate's fields, and the OCI referrer manifest that carries an envelope."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.builds.attestation import AttestInputs
from dockyard.provenance import statements
from dockyard.signing.keys import key_id

DIGEST = "sha256:" + "ab" * 32
BASE = "sha256:" + "cd" * 32


def inputs() -> AttestInputs:
    return AttestInputs(
        build=7,
        build_uuid="b-uuid",
        repository="acme/app",
        digest=DIGEST,
        media_type="application/vnd.oci.image.manifest.v1+json",
        builder="builder-1",
        executor="dockyard.builds.buildah:BuildahExecutor",
        source_url="https://git.example/acme/app.git",
        ref="refs/tags/v1.2",
        commit="c0ffee" * 6 + "abcd",
        rule="r-uuid",
        source_type="Tag",
        source_name="/^v(.*)$/",
        tag_template="{\\1}",
        dockerfile="Dockerfile",
        context="src",
        build_args=("GREETING", "TOKEN"),
        tags=("1.2",),
        network=False,
        cache=True,
        base_images=(("reg:5000/acme/base:1", BASE),),
        started_on="2026-01-01T00:00:00Z",
        finished_on="2026-01-01T00:01:00Z",
    )


def pae(payload_type: bytes, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(payload), payload)


def test_inputs_survive_the_job_payload() -> None:
    made = inputs()
    assert AttestInputs.from_payload(json.loads(json.dumps(made.payload()))) == made


def test_a_signed_envelope_verifies_over_the_pae_and_a_changed_payload_does_not() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = statements.statement("reg:5000/acme/app", DIGEST, statements.SLSA_PROVENANCE_V1, {"x": 1})
    envelope = json.loads(statements.envelope(body, key))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    payload = base64.b64decode(envelope["payload"])
    (signature,) = envelope["signatures"]
    assert signature["keyid"] == key_id(key.public_key())
    raw = base64.b64decode(signature["sig"])
    key.public_key().verify(raw, pae(b"application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(raw, pae(b"application/vnd.in-toto+json", payload + b" "), ec.ECDSA(hashes.SHA256()))
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "reg:5000/acme/app", "digest": {"sha256": "ab" * 32}}]
    assert json.loads(statements.envelope(body, None))["signatures"] == []


def test_the_slsa_predicate_records_source_rule_parameters_and_bases() -> None:
    predicate = statements.slsa_predicate(inputs(), builder_id="https://hub/builders/b1", invocation_id="https://i")
    definition = predicate["buildDefinition"]
    assert definition["buildType"] == statements.BUILD_TYPE
    external = definition["externalParameters"]
    assert external["source"] == {
        "repository": "https://git.example/acme/app.git",
        "ref": "refs/tags/v1.2",
        "commit": inputs().commit,
    }
    assert external["rule"] == {"id": "r-uuid", "source_type": "Tag", "source_name": "/^v(.*)$/", "tag": "{\\1}"}
    assert (external["dockerfile"], external["context"], external["build_args"]) == (
        "Dockerfile",
        "src",
        ["GREETING", "TOKEN"],
    )
    git, base = definition["resolvedDependencies"]
    assert git == {
        "uri": "git+https://git.example/acme/app.git@refs/tags/v1.2",
        "digest": {"gitCommit": inputs().commit},
    }
    assert base["name"] == "reg:5000/acme/base:1"
    assert base["digest"] == {"sha256": "cd" * 32}
    assert base["uri"] == f"oci://reg:5000/acme/base:1@{BASE}"
    run = predicate["runDetails"]
    assert run["builder"]["id"] == "https://hub/builders/b1"
    assert run["metadata"] == {
        "invocationId": "https://i",
        "startedOn": "2026-01-01T00:00:00Z",
        "finishedOn": "2026-01-01T00:01:00Z",
    }


def test_the_referrer_manifest_carries_the_envelope_with_the_image_as_subject() -> None:
    envelope = b'{"payloadType":"application/vnd.in-toto+json","payload":"","signatures":[]}'
    subject = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST, "size": 123}
    manifest = json.loads(
        statements.referrer_manifest(subject, envelope, statements.SPDX_DOCUMENT, created="t", build="b")
    )
    assert manifest["artifactType"] == "application/vnd.dsse.envelope.v1+json"
    assert manifest["subject"] == subject
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert manifest["config"]["digest"] == "sha256:" + hashlib.sha256(b"{}").hexdigest()
    (layer,) = manifest["layers"]
    assert layer["digest"] == "sha256:" + hashlib.sha256(envelope).hexdigest()
    assert layer["annotations"] == {"in-toto.io/predicate-type": "https://spdx.dev/Document"}
    assert manifest["annotations"]["in-toto.io/predicate-type"] == "https://spdx.dev/Document"
