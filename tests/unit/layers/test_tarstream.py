"""Reading layers as tar streams: compression by magic bytes, entry kinds and metadata, content hashes,
whiteouts and opaque markers, hostile names, implicit directories, and one member's content read again."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence

import pytest

from dockyard.layers import tarstream
from dockyard.layers.tarstream import (
    Kind,
    LayerFormatError,
    ScanStats,
    TarEntry,
    escapes_root,
    member_content,
    normalise,
    scan,
)
from tests.support.layers import E, compress, layer, tar_of


def entries_of(data: bytes) -> list[TarEntry]:
    return list(scan(io.BytesIO(data)))


def by_path(entries: Sequence[TarEntry]) -> dict[str, TarEntry]:
    return {e.path: e for e in entries if not e.implicit}


BASIC = [
    E("etc/", "dir", mode=0o755),
    E("etc/hello", data=b"hello\n", mode=0o640, uid=1000, gid=1001),
    E("etc/link", "symlink", link="../usr/bin/x"),
    E("etc/hard", "hardlink", link="etc/hello"),
    E("etc/fifo", "fifo"),
]


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_every_compression_reads_the_same_entries(compression: str) -> None:
    found = by_path(entries_of(layer(BASIC, compression)))

    assert set(found) == {"etc", "etc/hello", "etc/link", "etc/hard", "etc/fifo"}
    hello = found["etc/hello"]
    assert (hello.kind, hello.size, hello.mode, hello.uid, hello.gid) == (Kind.FILE, 6, 0o640, 1000, 1001)
    assert hello.sha256 == hashlib.sha256(b"hello\n").hexdigest()
    assert (hello.uname, hello.mtime) == ("root", 1_700_000_000)
    assert found["etc"].kind is Kind.DIR
    assert (found["etc/link"].kind, found["etc/link"].link) == (Kind.SYMLINK, "../usr/bin/x")
    hard = found["etc/hard"]
    assert (hard.kind, hard.link, hard.sha256, hard.size) == (Kind.HARDLINK, "etc/hello", hello.sha256, 6)
    assert found["etc/fifo"].kind is Kind.OTHER


def test_media_type_does_not_matter_magic_bytes_do() -> None:
    # A plain tar is read as such even if it was pushed as tar+gzip; zstd frames concatenated are read across.
    plain = tar_of(BASIC)
    assert len(entries_of(plain)) == 5
    frames = compress(plain[:1024], "zstd") + compress(plain[1024:], "zstd")
    assert len(entries_of(frames)) == 5


def test_whiteouts_and_opaque_markers_are_recorded_as_such() -> None:
    found = entries_of(
        layer([E("a/"), E("a/.wh.gone"), E("a/b/", "dir"), E("a/b/.wh..wh..opq"), E(".wh.top"), E("a/.wh..")])
    )
    kinds = {(e.path, e.kind) for e in found if not e.implicit}
    assert ("a/gone", Kind.WHITEOUT) in kinds
    assert ("a/b", Kind.OPAQUE) in kinds
    assert ("top", Kind.WHITEOUT) in kinds
    assert not any(".wh." in e.path for e in found)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "etc/passwd"),
        ("/etc/passwd", "etc/passwd"),
        ("./etc/./x/../passwd", "etc/passwd"),
        ("a/../../../b", "b"),
        ("//x//y/", "x/y"),
        ("..", ""),
        ("./", ""),
    ],
)
def test_hostile_names_are_normalised_under_the_root(name: str, expected: str) -> None:
    assert normalise(name) == expected


def test_hostile_entries_stay_inside_the_root() -> None:
    found = entries_of(
        layer([E("../../etc/passwd", data=b"x"), E("/abs/file", data=b"y"), E("..", "dir"), E("/", "file")])
    )
    paths = {e.path for e in found}
    assert "etc/passwd" in paths
    assert "abs/file" in paths
    assert all(not p.startswith(("/", "..")) and "/../" not in p for p in paths)
    # "/" as a regular file cannot be the root: skipped; ".." as a directory is the root
    assert {(e.path, e.kind) for e in found if e.path == ""} == {("", Kind.DIR)}


@pytest.mark.parametrize(
    ("name", "escapes"),
    [
        ("../etc/passwd", True),
        ("a/../../b", True),
        ("./../x", True),
        ("..", True),
        ("/etc/passwd", False),
        ("a/../b", False),
        ("a/b/../../c", False),
        ("./x/..", False),
        ("..foo/bar", False),
    ],
)
def test_names_climbing_above_the_root_are_recognised(name: str, escapes: bool) -> None:
    assert escapes_root(name) is escapes


def test_climbing_names_and_hard_links_are_counted_with_the_first_kept() -> None:
    stats = ScanStats()
    data = layer(
        [
            E("ok/file", data=b"x"),
            E("/abs/file", data=b"y"),
            E("a/../../etc/evil", data=b"z"),
            E("ok/link", kind="hardlink", link="../../outside"),
            E("../x", data=b"w"),
        ]
    )
    paths = {e.path for e in scan(io.BytesIO(data), stats)}
    assert {"ok/file", "abs/file", "etc/evil", "x"} <= paths  # still indexed, under the root
    assert stats.escapes == 3
    assert stats.escape_sample == "a/../../etc/evil"


def test_parents_without_entries_become_implicit_directories_first() -> None:
    found = entries_of(layer([E("usr/share/doc/x", data=b"1"), E("usr/share/", "dir", mode=0o700)]))
    assert [(e.path, e.implicit) for e in found] == [
        ("usr", True),
        ("usr/share", True),
        ("usr/share/doc", True),
        ("usr/share/doc/x", False),
        ("usr/share", False),
    ]
    assert [e.seq for e in found] == [0, 1, 2, 3, 4]
    assert found[3].member == 0
    assert found[4].member == 1


def test_member_content_reads_one_file_again() -> None:
    data = layer([E("a", data=b"first"), E("b/", "dir"), E("b/c", data=b"second" * 100_000)], "zstd")
    found = by_path(entries_of(data))
    content = b"".join(member_content(io.BytesIO(data), found["b/c"].member))
    assert content == b"second" * 100_000
    with pytest.raises(LayerFormatError):
        list(member_content(io.BytesIO(data), found["b"].member))
    with pytest.raises(LayerFormatError):
        list(member_content(io.BytesIO(data), 99))


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_truncated_streams_are_format_errors(compression: str) -> None:
    data = layer([E("a", data=os.urandom(200_000)), E("b", data=b"x")], compression)
    with pytest.raises(LayerFormatError):
        entries_of(data[: len(data) // 2])


def test_corrupt_gzip_is_a_format_error() -> None:
    data = bytearray(layer([E("a", data=bytes(range(256)) * 1000)], "gzip"))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\xff" * 64
    with pytest.raises(LayerFormatError):
        entries_of(bytes(data))


def test_garbage_is_a_format_error() -> None:
    with pytest.raises(LayerFormatError):
        entries_of(b"\x1f\x8bnot really gzip at all" * 10)
    with pytest.raises(LayerFormatError):
        entries_of(b"x" * 1000)


def test_stats_count_entries_and_skipped_names() -> None:
    stats = ScanStats()
    long_name = "d/" + "x" * 3000
    list(scan(io.BytesIO(layer([E("ok", data=b"1"), E(long_name, data=b"2")])), stats))
    assert (stats.entries, stats.skipped) == (1, 1)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_decompression_bombs_are_refused_and_ordinary_ratios_are_not(
    compression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tarstream, "EXPANSION_FLOOR", 1024 * 1024)
    zeros = layer([E("zeros", data=bytes(8 * 1024 * 1024))], compression)  # far more than 200:1
    with pytest.raises(LayerFormatError, match="decompression bomb"):
        entries_of(zeros)
    text = b"".join(b"line %d of a text file that compresses well\n" % i for i in range(60_000))
    assert len(text) > 2 * 1024 * 1024
    (entry,) = entries_of(layer([E("text", data=text)], compression))  # a few times smaller: read
    assert entry.sha256 == hashlib.sha256(text).hexdigest()
    monkeypatch.setattr(tarstream, "MAX_EXPANDED_BYTES", 1024 * 1024)
    with pytest.raises(LayerFormatError, match="decompression bomb"):
        entries_of(layer([E("text", data=text)], compression))
    assert len(entries_of(tar_of([E("zeros", data=bytes(8 * 1024 * 1024))]))) == 1  # uncompressed: no ratio
