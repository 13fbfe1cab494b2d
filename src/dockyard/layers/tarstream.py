"""Reading one layer as a tar stream, synchronously, in one forward pass: decompression picked by magic bytes
(gzip, zstd, or none), the entries as index rows (``TarEntry``: normalised path, kind, metadata, content hash,
whiteouts and opaque markers), and the content of one entry found again by its position in the stream.

Nothing is unpacked to disk and nothing is held whole in memory: ``tarfile`` runs in stream mode (``r|``) over a
file-like object, each regular file is hashed in ``READ_CHUNK`` pieces, and the members ``tarfile`` would keep are
dropped as the stream advances. Names are untrusted: ``normalise`` makes every path relative to the image root
(``../../etc/passwd`` and ``/etc/passwd`` are ``etc/passwd``), so no name escapes the root; names that try to
climb above it are counted (``ScanStats.escapes``: the inventory refuses such a layer, as a runtime would).

The functions here are blocking; ``dockyard.layers.bridge`` runs them in a worker thread over a blob stream.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import IO, TypeVar, cast

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_CHUNK = 256 * 1024
PEEK_BUFFER = 64 * 1024
MAX_PATH_BYTES = 2048  # longer names are skipped (counted): index keys stay small enough for any engine
MAX_HASHED_BYTES = 4 * 1024**3  # larger files are listed without a content hash
MAX_ENTRIES = 1_000_000  # a layer with more entries is refused as a tar bomb
# A compressed layer expanding past MAX_EXPANDED_BYTES, or past EXPANSION_FLOOR at more than MAX_EXPANSION_RATIO
# times what was read of it, is refused as a decompression bomb: reading it is bounded in time. (Real layers
# compress 2-20x; a layer whose content is mostly one long run of zeros — a pre-allocated file — is refused too.)
MAX_EXPANDED_BYTES = 64 * 1024**3
MAX_EXPANSION_RATIO = 200
EXPANSION_FLOOR = 256 * 1024**2
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

T = TypeVar("T")


class Kind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"
    WHITEOUT = "whiteout"
    OPAQUE = "opaque"


class LayerFormatError(Exception):
    """The layer is not a readable (optionally gzip- or zstd-compressed) tar stream."""


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One tar member as the index stores it (``dockyard.models.layers.LayerFile``)."""

    seq: int
    member: int
    path: str
    kind: Kind
    size: int
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: int
    link: str | None
    sha256: str | None
    offset: int

    @property
    def dir(self) -> str:
        return parent_of(self.path)

    @property
    def implicit(self) -> bool:
        """A directory the layer holds entries under but has no entry of its own (``member`` -1)."""
        return self.member < 0


@dataclass(slots=True)
class ScanStats:
    """What ``scan`` counted besides the entries it yielded."""

    entries: int = 0
    skipped: int = 0
    escapes: int = 0  # entries whose name (or hard link target) climbs above the root with ``..``
    escape_sample: str | None = None  # the first of them, as the tar names it
    hashed_bytes: int = 0
    files: dict[str, tuple[str | None, int]] = field(default_factory=dict)  # path -> (sha256, size), for hard links
    dirs: set[str] = field(default_factory=set)  # directories the layer has entries (or implicit ones) for


def _clean_text(text: str) -> str:
    """Undecodable bytes (kept by ``surrogateescape``) and NULs become U+FFFD: every engine stores the result."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "\ufffd")


def normalise(name: str) -> str:
    """``name`` relative to the image root: no leading ``/``, no ``.`` or empty parts, ``..`` never above the
    root. The root itself is ``""``."""
    parts: list[str] = []
    for part in _clean_text(name).split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def escapes_root(name: str) -> bool:
    """Whether ``name`` climbs above the root with ``..`` (``../etc``, ``a/../../etc``): a container runtime
    refuses to unpack such a layer (Docker's ``breakoutError``); ``normalise`` keeps it under the root."""
    depth = 0
    for part in name.split("/"):
        if part == "..":
            if depth == 0:
                return True
            depth -= 1
        elif part not in ("", "."):
            depth += 1
    return False


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def base_of(path: str) -> str:
    return path.rpartition("/")[2]


class _Counted:
    """What a decompressor reads: the compressed bytes, counted."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0
        self.mode = "rb"

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.count += len(data)
        return data


class _Bounded:
    """A decompressed stream that refuses to expand like a decompression bomb (``MAX_EXPANSION_RATIO``)."""

    def __init__(self, inner: IO[bytes], compressed: _Counted) -> None:
        self.inner = inner
        self.compressed = compressed
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        if self.count > MAX_EXPANDED_BYTES or (
            self.count > EXPANSION_FLOOR and self.count > MAX_EXPANSION_RATIO * max(self.compressed.count, 1)
        ):
            raise LayerFormatError(
                f"decompression bomb: {self.compressed.count} compressed bytes expand past {self.count}"
            )
        return data

    def close(self) -> None:
        self.inner.close()


def decompressed(raw: IO[bytes]) -> IO[bytes]:
    """``raw`` decompressed according to its first bytes: gzip (``1f 8b``), zstd (``28 b5 2f fd``) or none.
    Magic bytes decide, not the media type: pushed media types are often wrong (``tar.gzip`` on a plain tar).
    Reading a compressed stream raises ``LayerFormatError`` when it expands like a decompression bomb."""
    buffered = io.BufferedReader(cast("io.RawIOBase", raw), PEEK_BUFFER) if not hasattr(raw, "peek") else raw
    head = cast("io.BufferedReader", buffered).peek(4)[:4]
    counted = _Counted(buffered)
    source = cast("IO[bytes]", counted)  # read() is all either decompressor calls
    if head.startswith(GZIP_MAGIC):
        return cast("IO[bytes]", _Bounded(cast("IO[bytes]", gzip.GzipFile(fileobj=source, mode="rb")), counted))
    if head == ZSTD_MAGIC:
        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True, closefd=False)
        return cast("IO[bytes]", _Bounded(cast("IO[bytes]", reader), counted))
    return buffered


def open_tar(raw: IO[bytes]) -> tarfile.TarFile:
    """A stream-mode tar reader over ``raw`` (compressed or not). Raises ``LayerFormatError``."""
    try:
        return tarfile.open(fileobj=decompressed(raw), mode="r|", encoding="utf-8", errors="surrogateescape")
    except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
        raise LayerFormatError(f"not a tar stream: {exc}") from exc


def members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """The members in stream order, forgetting each once past it (``tarfile`` would keep them all)."""
    while True:
        try:
            member = tar.next()
        except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
            raise LayerFormatError(f"corrupt layer: {exc}") from exc
        if member is None:
            return
        tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every member otherwise
        yield member


def _kind(member: tarfile.TarInfo) -> Kind:
    if member.isreg():
        return Kind.FILE
    if member.isdir():
        return Kind.DIR
    if member.issym():
        return Kind.SYMLINK
    if member.islnk():
        return Kind.HARDLINK
    return Kind.OTHER


def _hash(tar: tarfile.TarFile, member: tarfile.TarInfo, stats: ScanStats) -> str | None:
    if member.size > MAX_HASHED_BYTES:
        return None
    content = tar.extractfile(member)
    if content is None:
        return None
    digest = hashlib.sha256()
    try:
        while chunk := content.read(READ_CHUNK):
            digest.update(chunk)
            stats.hashed_bytes += len(chunk)
    except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
        raise LayerFormatError(f"corrupt layer: {exc}") from exc
    return digest.hexdigest()


def _entry(position: int, member: tarfile.TarInfo, tar: tarfile.TarFile, stats: ScanStats) -> TarEntry | None:
    path = normalise(member.name)
    if escapes_root(member.name) or (member.islnk() and escapes_root(member.linkname)):
        stats.escapes += 1
        if stats.escape_sample is None:
            stats.escape_sample = _clean_text(member.name if escapes_root(member.name) else member.linkname)[:300]
    kind = _kind(member)
    link: str | None = None
    sha256: str | None = None
    size = member.size if kind is Kind.FILE else 0
    base = base_of(path)
    if base == OPAQUE_MARKER:
        kind, path = Kind.OPAQUE, parent_of(path)
    elif base.startswith(WHITEOUT_PREFIX):
        hidden = base[len(WHITEOUT_PREFIX) :]
        if hidden in ("", ".", ".."):
            return None
        kind, path = Kind.WHITEOUT, "/".join(p for p in (parent_of(path), hidden) if p)
    elif kind is Kind.FILE:
        sha256 = _hash(tar, member, stats)
        stats.files[path] = (sha256, size)
    elif kind is Kind.SYMLINK:
        link = _clean_text(member.linkname)
    elif kind is Kind.HARDLINK:
        link = normalise(member.linkname)
        sha256, size = stats.files.get(link, (None, 0))
    if len(path.encode()) > MAX_PATH_BYTES or (link is not None and len(link.encode()) > MAX_PATH_BYTES):
        return None
    if path == "" and kind not in (Kind.DIR, Kind.OPAQUE):
        return None  # only a directory (or an opaque marker) can be the root
    return TarEntry(
        seq=0,
        member=position,
        path=path,
        kind=kind,
        size=size,
        mode=stat.S_IMODE(member.mode),  # permission bits with setuid/setgid/sticky; the kind says the type
        uid=max(member.uid, 0),
        gid=max(member.gid, 0),
        uname=_clean_text(member.uname)[:255],
        gname=_clean_text(member.gname)[:255],
        mtime=int(member.mtime),
        link=link,
        sha256=sha256,
        offset=member.offset_data,
    )


def _implicit_dir(seq: int, path: str) -> TarEntry:
    return TarEntry(seq, -1, path, Kind.DIR, 0, 0o755, 0, 0, "", "", 0, None, None, -1)


def scan(raw: IO[bytes], stats: ScanStats | None = None) -> Iterator[TarEntry]:
    """The index entries of the layer read from ``raw``, in stream order, numbered by ``seq``; ``member`` is the
    entry's position in the tar stream (what ``member_content`` takes). Directories that entries sit in without
    an entry of their own come first as implicit ones (``member`` -1), so that each directory's children are found
    by their parent. An entry whose path is unusable (too long, a whiteout of ``..``) is skipped and counted in
    ``stats.skipped``. Raises ``LayerFormatError`` (corrupt or not a tar, too many entries)."""
    stats = stats if stats is not None else ScanStats()
    tar = open_tar(raw)
    seq = 0
    for position, member in enumerate(members(tar)):
        if position >= MAX_ENTRIES:
            raise LayerFormatError(f"layer has more than {MAX_ENTRIES} entries")
        entry = _entry(position, member, tar, stats)
        if entry is None:
            stats.skipped += 1
            continue
        holder = entry.path if entry.kind is Kind.OPAQUE else entry.dir
        missing: list[str] = []
        while holder and holder not in stats.dirs:
            missing.append(holder)
            stats.dirs.add(holder)
            holder = parent_of(holder)
        for path in reversed(missing):
            yield _implicit_dir(seq, path)
            seq += 1
        if entry.kind is Kind.DIR:
            stats.dirs.add(entry.path)
        stats.entries += 1
        yield replace(entry, seq=seq)
        seq += 1


def batches(entries: Iterator[TarEntry], size: int) -> Iterator[list[TarEntry]]:
    """``entries`` in lists of at most ``size``."""
    batch: list[TarEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def member_content(raw: IO[bytes], seq: int) -> Iterator[bytes]:
    """The content of the regular file at position ``seq`` of the tar stream of the layer read from ``raw``
    (``TarEntry.member``), in pieces of at most ``READ_CHUNK``. Raises ``LayerFormatError`` if the stream is
    corrupt or has no regular file there."""
    tar = open_tar(raw)
    for index, member in enumerate(members(tar)):
        if index < seq:
            continue
        if not member.isreg():
            raise LayerFormatError(f"entry {seq} of the layer is not a regular file")
        content = tar.extractfile(member)
        if content is None:
            raise LayerFormatError(f"entry {seq} of the layer has no content")
        try:
            while chunk := content.read(READ_CHUNK):
                yield chunk
        except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
            raise LayerFormatError(f"corrupt layer: {exc}") from exc
        return
    raise LayerFormatError(f"the layer has no entry {seq}")


class _MemberReader(io.RawIOBase):
    """A member's content as a raw reader whose stream errors are ``LayerFormatError`` (a reader's own errors
    stay its own)."""

    def __init__(self, content: IO[bytes]) -> None:
        self._content = content

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._content.read(len(buffer))
        except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
            raise LayerFormatError(f"corrupt layer: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)


def read_members(raw: IO[bytes], readers: Mapping[int, Callable[[IO[bytes]], T]]) -> Iterator[tuple[int, T]]:
    """One forward pass over the tar stream of the layer read from ``raw``: for each regular file whose position
    (``TarEntry.member``) is a key of ``readers``, ``(position, reader(content))`` where ``content`` is a
    file-like object over that file's bytes (read as much or as little of it as the reader wants). Stops after
    the last wanted position. Raises ``LayerFormatError`` if the stream is corrupt (also from within a reader's
    reads) or a wanted position is not a regular file; a reader's own exceptions propagate."""
    if not readers:
        return
    last = max(readers)
    tar = open_tar(raw)
    for index, member in enumerate(members(tar)):
        reader = readers.get(index)
        if reader is not None:
            if not member.isreg():
                raise LayerFormatError(f"entry {index} of the layer is not a regular file")
            content = tar.extractfile(member)
            if content is None:
                raise LayerFormatError(f"entry {index} of the layer has no content")
            yield index, reader(cast("IO[bytes]", io.BufferedReader(_MemberReader(content), READ_CHUNK)))
        if index >= last:
            return
    raise LayerFormatError(f"the layer has no entry {last}")
