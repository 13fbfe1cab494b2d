"""Hand-built image layers for the layer-index, SBOM and scanning tests: tar archives from a list of entries,
compressed with gzip, zstd or not at all; a dpkg database and a Debian ``os-release`` to put in them; an image of
such layers pushed over ``/v2``."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import httpx
import zstandard

from tests.support.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, canonical, descriptor, push_blob, sha256, unique_name


@dataclass(frozen=True)
class E:
    """One tar member: ``kind`` file/dir/symlink/hardlink/fifo; ``data`` a file's content; ``link`` a link's."""

    name: str
    kind: str = "file"
    data: bytes = b""
    link: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def tar_of(entries: Sequence[E]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = _TYPES[entry.kind]
            info.mode = entry.mode
            info.uid, info.gid = entry.uid, entry.gid
            info.uname, info.gname = "root", "root"
            info.mtime = 1_700_000_000
            info.linkname = entry.link
            if entry.kind == "file":
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return out.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def layer(entries: Sequence[E], compression: str = "gzip") -> bytes:
    return compress(tar_of(entries), compression)


async def chunked(data: bytes, size: int = 7_000) -> AsyncIterator[bytes]:
    """``data`` as an async stream of small chunks (odd sizes: readers must not assume aligned reads)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


DEBIAN_12_OS_RELEASE = (
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
)


def dpkg_status(*packages: tuple[str, str, str | None]) -> bytes:
    """A dpkg ``status`` file listing ``(name, version, source or None)`` as installed."""
    paragraphs = []
    for name, version, source in packages:
        text = f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n"
        if source:
            text += f"Source: {source}\n"
        paragraphs.append(text + "Description: a package\n more\n")
    return "\n".join(paragraphs).encode()


def push_layers(client: httpx.Client, repo: str, tag: str, layers: list[bytes]) -> str:
    """Push an amd64 image of ``layers`` (bottom first) as ``repo:tag``; returns its manifest digest."""
    config = canonical({"architecture": "amd64", "os": "linux", "config": {}, "seed": unique_name()})
    push_blob(client, repo, config)
    for blob in layers:
        push_blob(client, repo, blob)
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, blob) for blob in layers],
        }
    )
    response = client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return sha256(body)
