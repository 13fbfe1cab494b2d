"""The tag scheme, which artifacts stay readable under ``enforce``, and the strict decoders for untrusted parts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockyard.core import mediatypes as mt
from dockyard.errors import Invalid
from dockyard.signing import formats as f

HEX = "ab" * 32
TAR = "application/vnd.oci.image.layer.v1.tar+gzip"


def test_signature_tag() -> None:
    assert f.signature_tag("sha256:abc") == "sha256-abc.sig"
    assert f.signature_tag(f"sha256:{HEX}") == f"sha256-{HEX}.sig"
    with pytest.raises(Invalid):
        f.signature_tag("latest")


@pytest.mark.parametrize(
    ("tag", "digest"),
    [
        (f"sha256-{HEX}.sig", f"sha256:{HEX}"),
        (f"sha256-{HEX}.att", f"sha256:{HEX}"),
        (f"sha512-{HEX * 2}.sbom", f"sha512:{HEX * 2}"),
        (f"sha256-{HEX}", None),
        (f"sha256-{HEX[:-1]}.sig", None),
        (f"sha256-{HEX.upper()}.sig", None),
        ("latest", None),
    ],
)
def test_signed_digest_of_tag(tag: str, digest: str | None) -> None:
    assert f.signed_digest_of_tag(tag) == digest


@pytest.mark.parametrize(
    ("media_type", "artifact_type", "tag", "layers", "expected"),
    [
        # tag scheme: .sig (cosign, skopeo), .att, .sbom — fetched by tag
        (mt.OCI_MANIFEST, "application/vnd.oci.image.config.v1+json", f"sha256-{HEX}.sig", [f.SIMPLE_SIGNING], True),
        (mt.DOCKER_MANIFEST, None, f"sha256-{HEX}.att", ["application/vnd.dsse.envelope.v1+json"], True),
        (mt.OCI_MANIFEST, None, f"sha256-{HEX}.sbom", ["text/spdx"], True),
        (mt.OCI_MANIFEST, None, f"sha256-{HEX}.sig", None, True),
        # referrers — fetched by digest
        (mt.OCI_MANIFEST, f.COSIGN_SIG_ARTIFACT, None, [f.SIMPLE_SIGNING], True),
        (mt.OCI_MANIFEST, f.SIGSTORE_BUNDLE_V03, None, [f.SIGSTORE_BUNDLE_V03], True),
        (mt.OCI_MANIFEST, "application/vnd.dev.sigstore.bundle+json;version=0.2", None, None, True),
        (mt.OCI_MANIFEST, f.IN_TOTO, None, ["application/vnd.dsse.envelope.v1+json"], True),
        (mt.OCI_MANIFEST, "application/spdx+json", None, ["application/spdx+json"], True),
        # a tag-scheme signature fetched by digest: payload layers only
        (mt.OCI_MANIFEST, "application/vnd.oci.image.config.v1+json", None, [f.SIMPLE_SIGNING], True),
        (mt.OCI_MANIFEST, "application/vnd.oci.image.config.v1+json", None, [], False),
        # the referrers fallback index only lists referrers
        (mt.OCI_INDEX, None, f"sha256-{HEX}", None, True),
        # images, whatever their tag or artifact type claims
        (mt.OCI_MANIFEST, "application/vnd.oci.image.config.v1+json", "latest", [TAR], False),
        (mt.OCI_MANIFEST, None, f"sha256-{HEX}.sig", [TAR], False),
        (mt.OCI_MANIFEST, f.SIGSTORE_BUNDLE_V03, None, [f.SIGSTORE_BUNDLE_V03, TAR], False),
        (mt.DOCKER_MANIFEST, None, f"sha256-{HEX}.sig", ["application/vnd.docker.image.rootfs.diff.tar.gzip"], False),
        (mt.OCI_INDEX, None, f"sha256-{HEX}.sig", None, False),
        (mt.OCI_INDEX, None, "latest", None, False),
        (mt.OCI_MANIFEST, f.SIGSTORE_BUNDLE_V03, None, ["application/vnd.wasm.content.layer.v1+wasm"], False),
        (mt.OCI_MANIFEST, "application/vnd.example+json", None, None, False),
        (mt.OCI_MANIFEST, None, None, None, False),
        ("application/octet-stream", f.COSIGN_SIG_ARTIFACT, None, None, False),
    ],
)
def test_is_signature_artifact(
    media_type: str, artifact_type: str | None, tag: str | None, layers: list[str] | None, expected: bool
) -> None:
    assert f.is_signature_artifact(media_type, artifact_type, tag, layer_media_types=layers) is expected


def test_load_json_object_is_strict() -> None:
    assert f.load_json_object(b'{"a": 1}', max_bytes=10) == {"a": 1}
    for data, reason in [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b"[1]", "not a JSON object"),
        (b"\xff{}", "not valid JSON"),
        (b"[" * 50_000, "not valid JSON"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b" " * 11, "larger than"),
    ]:
        with pytest.raises(f.FormatError, match=reason):
            f.load_json_object(data, max_bytes=50_000 if len(data) > 11 else 10)


def test_lookup_is_case_insensitive_but_unambiguous() -> None:
    assert f.lookup({"Docker-manifest-digest": "x"}, "docker-manifest-digest") == "x"
    assert f.lookup({}, "docker-manifest-digest") is None
    with pytest.raises(f.FormatError):
        f.lookup({"docker-manifest-digest": "x", "Docker-Manifest-Digest": "y"}, "docker-manifest-digest")


def test_decode_b64() -> None:
    assert f.decode_b64("aGk=", max_chars=8) == b"hi"
    assert f.decode_b64("-_8", max_chars=8, urlsafe=True) == b"\xfb\xff"
    for value in ["-_8=", "aGk", "a b=", "\u00e9\u00e9\u00e9\u00e9", "", 5, None, "aGk=" * 3]:
        with pytest.raises(f.FormatError):
            f.decode_b64(value, max_chars=8)


def test_dsse_pae() -> None:
    # The example of the DSSE v1 protocol document.
    assert f.dsse_pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_times() -> None:
    assert f.time_from_unix(1_700_000_000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert f.time_from_unix("1700000000") == f.time_from_unix(1_700_000_000)
    for bad in [True, -1, 0, 10**20, "17e8", "１７", 1.5, None]:
        assert f.time_from_unix(bad) is None
    assert f.time_from_rfc3339("2024-03-08T18:18:20.406Z") == datetime(2024, 3, 8, 18, 18, 20, 406000, tzinfo=UTC)
    assert f.time_from_rfc3339("2024-03-08T20:18:20+02:00") == datetime(2024, 3, 8, 18, 18, 20, tzinfo=UTC)
    for bad in ["yesterday", "", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", 5, None]:
        assert f.time_from_rfc3339(bad) is None
