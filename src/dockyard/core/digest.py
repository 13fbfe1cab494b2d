"""Content digests (``algorithm:hex``) and the streaming hashers that compute them: sha256 and sha512."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.errors import Invalid, Unsupported

if TYPE_CHECKING:
    from hashlib import _Hash as Hasher
else:
    Hasher = object

__all__ = ["ALGORITHMS", "Digest", "Hasher", "check_algorithm", "looks_like_digest", "new_hasher"]

ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
_HEX_RE = re.compile(r"^[a-f0-9]+$")


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated digest of a supported algorithm."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse ``value``; raise ``Invalid("digest")`` when malformed, ``Unsupported`` for unknown algorithms."""
        match = _DIGEST_RE.match(value)
        if match is None:
            raise Invalid("digest", f"invalid digest {value[:200]!r}")
        algorithm, encoded = match.group(1), match.group(2)
        if algorithm not in ALGORITHMS:
            raise Invalid("digest", f"unsupported digest algorithm {algorithm[:32]!r}")
        if len(encoded) != ALGORITHMS[algorithm] or not _HEX_RE.match(encoded):
            raise Invalid("digest", f"invalid {algorithm} digest {value[:200]!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        hasher = new_hasher(algorithm)
        hasher.update(data)
        return cls(algorithm, hasher.hexdigest())


def looks_like_digest(value: str) -> bool:
    """True when ``value`` has a digest's shape (contains ``:``); tags never contain one."""
    return ":" in value


def new_hasher(algorithm: str) -> Hasher:
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "sha512":
        return hashlib.sha512()
    raise Unsupported("digest", f"unsupported digest algorithm {algorithm[:32]!r}")


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise Invalid("digest", f"unsupported digest algorithm {algorithm[:32]!r}")
    return algorithm
