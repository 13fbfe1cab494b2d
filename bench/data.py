"""Test data, made once per run and pushed unchanged to both servers.

- Big blobs: one temp file of ``size + (count - 1) MiB`` random bytes written in a stream; blob *k* is the
  ``size`` bytes starting at ``k`` MiB, so every push in every round has content of its own (no dedup) without
  a file per blob.
- Small images: config blob + one random 1–10 KiB layer + OCI manifest, unique per image.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

_WRITE_PIECE = 4 * MiB


@dataclass(frozen=True, slots=True)
class BigBlob:
    offset: int
    size: int
    digest: str


@dataclass(frozen=True, slots=True)
class BigData:
    path: Path
    blobs: list[BigBlob]


def sha256_digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _hash_range(path: Path, offset: int, size: int) -> str:
    hasher = hashlib.sha256()
    buf = bytearray(_WRITE_PIECE)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        fh.seek(offset)
        remaining = size
        while remaining > 0:
            n = fh.readinto(view[: min(len(buf), remaining)])
            if not n:
                raise OSError(f"{path} is shorter than expected")
            hasher.update(view[:n])
            remaining -= n
    return f"sha256:{hasher.hexdigest()}"


def make_big_data(directory: Path, size: int, count: int) -> BigData:
    """Write the random file (streamed, never whole in memory) and hash each of the ``count`` blobs in it."""
    path = directory / "big.bin"
    total = size + (count - 1) * MiB
    with path.open("wb") as fh:
        remaining = total
        while remaining > 0:
            piece = min(_WRITE_PIECE, remaining)
            fh.write(os.urandom(piece))
            remaining -= piece
    blobs = [BigBlob(k * MiB, size, _hash_range(path, k * MiB, size)) for k in range(count)]
    return BigData(path, blobs)


@dataclass(frozen=True, slots=True)
class SmallImage:
    repo: str
    config: bytes
    config_digest: str
    layer: bytes
    layer_digest: str
    manifest: bytes
    manifest_digest: str


def make_manifest(config: bytes, layer: bytes) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256_digest(layer), "size": len(layer)}],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def make_small_images(count: int, prefix: str = "small/img") -> list[SmallImage]:
    rng = random.Random(20261127)
    images = []
    for i in range(count):
        layer = os.urandom(rng.randint(1024, 10 * 1024))
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Labels": {"bench.image": str(i), "bench.nonce": os.urandom(8).hex()}},
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer)]},
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        manifest = make_manifest(config, layer)
        images.append(
            SmallImage(
                repo=f"{prefix}{i:05d}",
                config=config,
                config_digest=sha256_digest(config),
                layer=layer,
                layer_digest=sha256_digest(layer),
                manifest=manifest,
                manifest_digest=sha256_digest(manifest),
            )
        )
    return images
