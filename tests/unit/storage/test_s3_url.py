"""The ``s3://`` storage URL (pure parsing, no bucket)."""

from __future__ import annotations

import pytest

from dockyard.storage.s3.url import parse_s3_url

MiB = 1024 * 1024


def test_parse_url() -> None:
    options = parse_s3_url("s3://my-bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=eu-west-1")
    assert (options.bucket, options.prefix, options.endpoint, options.region) == (
        "my-bucket",
        "some/prefix",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert options.redirect is False
    assert options.addressing is None
    options = parse_s3_url("s3://my-bucket?addressing=virtual&redirect=true&part_size=16777216")
    assert (options.prefix, options.endpoint, options.addressing, options.redirect) == ("", None, "virtual", True)
    assert options.part_size == 16 * MiB
    for bad in (
        "s3:///no-bucket",
        "s3://my-bucket?colour=blue",
        "s3://my-bucket?redirect=perhaps",
        "s3://my-bucket?addressing=sideways",
        "s3://my-bucket?part_size=1024",
        "s3://my-bucket?endpoint=ftp://x",
        "s3://key:secret@my-bucket",
        "s3://my-bucket?region=a&region=b",
    ):
        with pytest.raises(ValueError, match=r"."):
            parse_s3_url(bad)
