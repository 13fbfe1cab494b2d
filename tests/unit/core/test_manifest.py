from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.core import mediatypes as mt
from dockyard.core.manifest import parse_manifest
from dockyard.errors import Invalid

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def image(**extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D1, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": D2, "size": 3}],
        **extra,
    }


def test_image_manifest_references() -> None:
    parsed = parse_manifest(body(image()), mt.OCI_MANIFEST)
    assert parsed.media_type == mt.OCI_MANIFEST
    assert [str(d.digest) for d in parsed.blob_references()] == [D1, D2]
    assert parsed.referrer_artifact_type == "application/vnd.oci.image.config.v1+json"


def test_artifact_with_subject_and_empty_config() -> None:
    doc = image(
        artifactType="application/vnd.example+json", subject={"mediaType": mt.OCI_MANIFEST, "digest": D3, "size": 10}
    )
    doc["config"] = {"mediaType": mt.OCI_EMPTY, "digest": D1, "size": 2}
    parsed = parse_manifest(body(doc), mt.OCI_MANIFEST)
    assert parsed.subject is not None
    assert str(parsed.subject.digest) == D3
    assert parsed.referrer_artifact_type == "application/vnd.example+json"


def test_index_children() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mt.OCI_MANIFEST,
                "digest": D1,
                "size": 5,
                "platform": {"os": "linux", "architecture": "arm64"},
            }
        ],
    }
    parsed = parse_manifest(body(doc), mt.OCI_INDEX)
    assert parsed.is_index
    assert [str(c.digest) for c in parsed.children] == [D1]
    assert parsed.blob_references() == []


def test_foreign_layers_are_not_required() -> None:
    doc = image()
    doc["layers"].append(
        {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "digest": D3,
            "size": 9,
            "urls": ["https://example.invalid/layer"],
        }
    )
    parsed = parse_manifest(body(doc), mt.OCI_MANIFEST)
    assert D3 not in {str(d.digest) for d in parsed.blob_references()}


def test_media_type_inferred_for_generic_content_type() -> None:
    doc = image()
    del doc["mediaType"]
    assert parse_manifest(body(doc), "application/json").media_type == mt.OCI_MANIFEST
    assert parse_manifest(body(image()), "").media_type == mt.OCI_MANIFEST


@pytest.mark.parametrize(
    ("raw", "content_type", "fragment"),
    [
        (b"{not json", mt.OCI_MANIFEST, "not valid JSON"),
        (b"[]", mt.OCI_MANIFEST, "JSON object"),
        (body({"schemaVersion": 1, "name": "x", "fsLayers": []}), mt.DOCKER_SCHEMA1_SIGNED, "schema 1"),
        (body(image()), mt.DOCKER_MANIFEST, "does not match Content-Type"),
        (body(image(schemaVersion=3)), mt.OCI_MANIFEST, "schemaVersion"),
        (body({**image(), "config": {"mediaType": "x", "digest": "sha256:bad", "size": 1}}), mt.OCI_MANIFEST, "config"),
        (body({**image(), "layers": [{"mediaType": "x", "digest": D1, "size": -1}]}), mt.OCI_MANIFEST, "size"),
        (body({**image(), "layers": "nope"}), mt.OCI_MANIFEST, "layers"),
        (body({"schemaVersion": 2, "mediaType": mt.OCI_INDEX}), mt.OCI_INDEX, "manifests"),
        (body(image()), "application/vnd.unknown+json", "does not match"),
        (body({**image(), "annotations": {"a": 1}}), mt.OCI_MANIFEST, "annotations"),
    ],
)
def test_invalid_manifests(raw: bytes, content_type: str, fragment: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_manifest(raw, content_type)
    assert info.value.subject == "manifest"
    assert fragment in info.value.message
