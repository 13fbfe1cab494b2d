from __future__ import annotations

import hashlib

import pytest

from dockyard.core.digest import Digest, new_hasher
from dockyard.errors import Invalid


def test_parse_sha256_and_sha512() -> None:
    h256 = hashlib.sha256(b"x").hexdigest()
    h512 = hashlib.sha512(b"x").hexdigest()
    assert str(Digest.parse(f"sha256:{h256}")) == f"sha256:{h256}"
    assert Digest.parse(f"sha512:{h512}").algorithm == "sha512"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:xyz",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha512:" + "a" * 64,
        "md5:" + "a" * 32,
        "../../etc/passwd",
        "sha256:" + "a" * 64 + "/../x",
    ],
)
def test_parse_rejects_malformed(value: str) -> None:
    with pytest.raises(Invalid) as info:
        Digest.parse(value)
    assert info.value.subject == "digest"


def test_of_matches_hashlib() -> None:
    assert Digest.of(b"hello").hex == hashlib.sha256(b"hello").hexdigest()
    assert Digest.of(b"hello", "sha512").hex == hashlib.sha512(b"hello").hexdigest()
    hasher = new_hasher("sha512")
    hasher.update(b"hel")
    hasher.update(b"lo")
    assert hasher.hexdigest() == hashlib.sha512(b"hello").hexdigest()
