"""Hand-built image layers for the layer-index tests: tar archives from a list of entries, compressed with gzip,
zstd or not at all."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import zstandard


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
