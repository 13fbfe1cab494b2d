"""The storage key layout: the one place that draws keys, for every driver."""

from __future__ import annotations

import pytest

from dockyard.storage import paths

HEX = "ab" + "0" * 62
UPLOAD = "0123456789abcdef0123456789abcdef"


def test_blob_and_upload_keys() -> None:
    assert paths.blob_key(f"sha256:{HEX}") == f"blobs/sha256/ab/{HEX}"
    assert paths.upload_key(UPLOAD) == f"uploads/{UPLOAD}"
    for bad in ("sha256:../../etc/passwd", "../x", "sha256:" + "g" * 64, "md5:" + "a" * 32):
        with pytest.raises(ValueError, match="not a digest"):
            paths.blob_key(bad)
    for bad in ("../../evil", UPLOAD.upper(), UPLOAD + "0", ""):
        with pytest.raises(ValueError, match="not an upload id"):
            paths.upload_key(bad)
    assert paths.is_upload_id(UPLOAD)
    assert not paths.is_upload_id(".readyz")


def test_segmented_upload_keys() -> None:
    directory = "prefix/" + paths.upload_dir(UPLOAD)
    assert directory == f"prefix/uploads/{UPLOAD}/"
    assert paths.upload_marker(directory) == directory + "info"
    assert paths.upload_segment(directory, 0) == directory + "s/" + "0" * 20
    assert paths.upload_segment(directory, 5 * 1024 * 1024) == directory + "s/00000000000005242880"
    assert paths.is_upload_marker("info")
    assert paths.segment_start("s/00000000000005242880") == 5 * 1024 * 1024
    assert paths.segment_start("info") is None
    assert paths.segment_start("s/12x") is None
    assert paths.segment_start("leftover") is None
