"""The inventory's detectors on real-format records written here: dpkg status (Source lines, epochs, removed
packages), distroless status.d, Alpine's installed database, os-release, RPM headers in an rpmdb.sqlite,
Python core metadata, package.json, pom.properties in a jar (and a jar in a jar), a Go build-info blob — and
hostile inputs: truncated, binary junk, oversized."""

from __future__ import annotations

import io
import sqlite3
import struct
import zipfile
from pathlib import Path

import pytest

from dockyard.inventory import distro, gobinary, jars, language, rpmdb
from dockyard.inventory.records import PackageDBError, PackageRecord, RecordType

DPKG_STATUS = b"""Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc (2.36-9+deb12u4)
Version: 2.36-9+deb12u7
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 More text.

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12
Version: 1:12.2.0-14
Description: GCC support library

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
"""


def _io(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def test_dpkg_status_installed_packages_with_sources_and_epochs() -> None:
    assert distro.read_dpkg(_io(DPKG_STATUS)) == [
        PackageRecord(RecordType.DEB, "libc6", "2.36-9+deb12u7", "glibc", "2.36-9+deb12u4", "amd64"),
        PackageRecord(RecordType.DEB, "libgcc-s1", "1:12.2.0-14", "gcc-12", None, "amd64"),
        PackageRecord(RecordType.DEB, "base-files", "12.4+deb12u5", None, None, "amd64"),
    ]


def test_distroless_status_d_file_has_no_status_field() -> None:
    record = b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\nSource: tzdata\n"
    assert distro.read_dpkg(_io(record)) == [PackageRecord(RecordType.DEB, "tzdata", "2024a-0+deb12u1", arch="all")]


@pytest.mark.parametrize(
    "data",
    [
        b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,  # binary junk
        b"Version: 1.0\nArchitecture: amd64\n",  # no Package
        b"Package: x\nStatus: install ok installed\nVersion: 1 0 bad\n",  # not a version
        b"Package: x\nVersion: 1.0\nSource: a b c\n",  # malformed Source
        b"Package: " + b"a" * 5000 + b"\nVersion: 1\n",  # huge field
    ],
)
def test_malformed_dpkg_status_is_an_error(data: bytes) -> None:
    with pytest.raises(PackageDBError):
        distro.read_dpkg(_io(data))


def test_oversized_package_database_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(distro, "MAX_DB", 100)
    with pytest.raises(PackageDBError, match="larger than"):
        distro.read_dpkg(_io(DPKG_STATUS))


def test_truncated_dpkg_status_reads_what_is_complete_or_fails() -> None:
    cut = DPKG_STATUS[: DPKG_STATUS.index(b"Version: 1:12")]
    with pytest.raises(PackageDBError):  # the last paragraph lost its Version
        distro.read_dpkg(_io(cut))


APK_INSTALLED = b"""C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:383152
o:musl
m:Natanael Copa
t:1700000000

C:Q1def=
P:libcrypto3
V:3.1.4-r5
A:x86_64
o:openssl
L:Apache-2.0
"""


def test_apk_installed() -> None:
    assert distro.read_apk(_io(APK_INSTALLED)) == [
        PackageRecord(RecordType.APK, "musl", "1.2.4_git20230717-r4", arch="x86_64"),
        PackageRecord(RecordType.APK, "libcrypto3", "3.1.4-r5", "openssl", arch="x86_64"),
    ]


@pytest.mark.parametrize("data", [b"P:musl\nthis is not a field\n", b"\x00\x01\x02junk", b"V:1.0\nA:x86_64\n"])
def test_malformed_apk_installed_is_an_error(data: bytes) -> None:
    with pytest.raises(PackageDBError):
        distro.read_apk(_io(data))


def test_os_release() -> None:
    found = distro.read_os_release(
        _io(
            b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
            b"VERSION_CODENAME=bookworm\nID=debian\n# comment\n"
        )
    )
    assert found is not None
    assert (found.id, found.version_id, found.version_codename) == ("debian", "12", "bookworm")
    assert found.pretty_name == "Debian GNU/Linux 12 (bookworm)"
    assert distro.read_os_release(_io(b"NAME=nothing\n")) is None
    with pytest.raises(PackageDBError):
        distro.read_os_release(_io(b"ID=x\x00\x00"))


def _rpm_header(tags: dict[int, str | int]) -> bytes:
    index, data = b"", b""
    for tag, value in tags.items():
        if isinstance(value, int):
            while len(data) % 4:
                data += b"\x00"
            index += struct.pack(">iiii", tag, 4, len(data), 1)
            data += struct.pack(">i", value)
        else:
            index += struct.pack(">iiii", tag, 6, len(data), 1)
            data += value.encode() + b"\x00"
    return struct.pack(">ii", len(tags), len(data)) + index + data


def _rpmdb(path: Path, blobs: list[bytes]) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    conn.commit()
    conn.close()
    return path.read_bytes()


def test_rpmdb_sqlite_headers(tmp_path: Path) -> None:
    bash = _rpm_header({1000: "bash", 1001: "5.1.8", 1002: "6.el9", 1022: "x86_64", 1044: "bash-5.1.8-6.el9.src.rpm"})
    openssl = _rpm_header(
        {
            1000: "openssl-libs",
            1001: "3.0.7",
            1002: "25.el9",
            1003: 1,
            1022: "x86_64",
            1044: "openssl-3.0.7-25.el9.src.rpm",
        }
    )
    key = _rpm_header({1000: "gpg-pubkey", 1001: "fd431d51", 1002: "4ae0493b"})
    db = _rpmdb(tmp_path / "rpmdb.sqlite", [bash, openssl, key])
    assert rpmdb.read_rpmdb(_io(db), tmp_dir=tmp_path / "spool") == [
        PackageRecord(RecordType.RPM, "bash", "5.1.8-6.el9", arch="x86_64"),
        PackageRecord(RecordType.RPM, "openssl-libs", "1:3.0.7-25.el9", "openssl", None, "x86_64"),
    ]
    assert list((tmp_path / "spool").iterdir()) == []  # the spool is gone


@pytest.mark.parametrize(
    "blob",
    [
        b"\x00\x00",
        struct.pack(">ii", 5, 10) + b"short",
        struct.pack(">ii", 1, 4) + struct.pack(">iiii", 1000, 6, 99, 1) + b"abcd",
    ],
)
def test_malformed_rpm_headers_are_errors(tmp_path: Path, blob: bytes) -> None:
    with pytest.raises(PackageDBError):
        rpmdb.read_rpmdb(_io(_rpmdb(tmp_path / "db.sqlite", [blob])), tmp_dir=tmp_path)


def test_rpmdb_that_is_not_sqlite_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PackageDBError, match="cannot be read"):
        rpmdb.read_rpmdb(_io(b"SQLite format 3\x00" + b"\xff" * 5000), tmp_dir=tmp_path)


METADATA = b"""Metadata-Version: 2.1
Name: Typing_Extensions
Version: 4.12.2
Summary: Backported and Experimental Type Hints for Python 3.8+
Requires-Python: >=3.8

Long description: Name: not-this
"""


def test_python_metadata_and_egg_info() -> None:
    assert language.read_python(_io(METADATA)) == [PackageRecord(RecordType.PYPI, "Typing_Extensions", "4.12.2")]
    assert language.read_python(_io(b"Metadata-Version: 1.0\nName: six\nVersion: 1.16.0\n")) == [
        PackageRecord(RecordType.PYPI, "six", "1.16.0")
    ]
    assert language.read_python(_io(b"\x00\xff garbage")) == []  # skipped, not an error
    assert language.read_python(_io(b"Name: x\n")) == []
    assert language.is_python_metadata("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA")
    assert language.is_python_metadata("site/foo.egg-info/PKG-INFO")
    assert not language.is_python_metadata("site/foo.dist-info/RECORD")


def test_package_json_under_node_modules() -> None:
    assert language.read_package_json(_io(b'{"name": "@types/node", "version": "20.1.0", "x": [1]}')) == [
        PackageRecord(RecordType.NPM, "@types/node", "20.1.0")
    ]
    for broken in (b"{not json", b"[]", b'{"name": 1, "version": "1"}', b'{"name": "a"}', b"[" * 100_000):
        assert language.read_package_json(_io(broken)) == []
    assert language.is_npm_package("app/node_modules/left-pad/package.json")
    assert language.is_npm_package("node_modules/@types/node/package.json")
    assert language.is_npm_package("app/node_modules/a/node_modules/b/package.json")
    assert not language.is_npm_package("app/node_modules/resolve/test/fixtures/package.json")
    assert not language.is_npm_package("app/package.json")
    assert not language.is_npm_package("node_modules/@types/package.json")


def _jar(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _pom(group: str, artifact: str, version: str) -> bytes:
    return f"#Generated by Maven\ngroupId={group}\nartifactId={artifact}\nversion={version}\n".encode()


def test_pom_properties_in_a_jar_and_a_nested_jar(tmp_path: Path) -> None:
    inner = _jar({"META-INF/maven/org.slf4j/slf4j-api/pom.properties": _pom("org.slf4j", "slf4j-api", "2.0.9")})
    outer = _jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
            "META-INF/maven/com.example/app/pom.properties": _pom("com.example", "app", "1.0.0"),
            "META-INF/maven/com.example/app/pom.xml": b"<project/>",
            "BOOT-INF/lib/slf4j-api-2.0.9.jar": inner,
        }
    )
    assert jars.read_archive(_io(outer), tmp_path) == [
        PackageRecord(RecordType.MAVEN, "com.example:app", "1.0.0"),
        PackageRecord(RecordType.MAVEN, "org.slf4j:slf4j-api", "2.0.9"),
    ]
    assert jars.read_archive(_io(b"PK\x03\x04 not really a zip"), tmp_path) == []
    assert jars.read_archive(_io(_jar({"META-INF/maven/g/a/pom.properties": b"groupId=g\n"})), tmp_path) == []


def _go_binary(version: str, modinfo: str, *, offset: int = 4096) -> bytes:
    def varint(n: int) -> bytes:
        out = b""
        while n >= 0x80:
            out += bytes([n & 0x7F | 0x80])
            n >>= 7
        return out + bytes([n])

    sentinel = b"0123456789abcdef"
    mod = sentinel + modinfo.encode() + sentinel
    header = gobinary.MAGIC + bytes([8, 2]) + bytes(16)
    blob = header + varint(len(version)) + version.encode() + varint(len(mod)) + mod
    body = b"\x7fELF\x02\x01\x01" + bytes(offset - 7)
    # a decoy magic at an unaligned offset, then the real header at an aligned one
    return body[:100] + gobinary.MAGIC + body[100 + len(gobinary.MAGIC) :] + blob + bytes(300_000)


MODINFO = (
    "path\texample.com/cmd/tool\n"
    "mod\texample.com/cmd\tv1.4.0\th1:abc=\n"
    "dep\tgithub.com/pkg/errors\tv0.9.1\th1:def=\n"
    "dep\tgolang.org/x/net\tv0.17.0\th1:ghi=\n"
    "=>\tgolang.org/x/net\tv0.19.0\th1:jkl=\n"
    "build\t-compiler=gc\n"
)


def test_go_build_info() -> None:
    found = gobinary.read_go_binary(_io(_go_binary("go1.22.3", MODINFO)))
    assert found == [
        PackageRecord(RecordType.GOLANG, "example.com/cmd", "v1.4.0"),
        PackageRecord(RecordType.GOLANG, "github.com/pkg/errors", "v0.9.1"),
        PackageRecord(RecordType.GOLANG, "golang.org/x/net", "v0.19.0"),
        PackageRecord(RecordType.GOLANG, "stdlib", "v1.22.3"),
    ]
    # the header straddling a read boundary is found all the same
    assert gobinary.read_go_binary(_io(_go_binary("go1.21.0", MODINFO, offset=gobinary.CHUNK - 16))) == [
        *found[:3],
        PackageRecord(RecordType.GOLANG, "stdlib", "v1.21.0"),
    ]


def test_files_without_go_build_info() -> None:
    assert gobinary.read_go_binary(_io(b"#!/bin/sh\necho hi\n" * 10_000)) == []
    assert gobinary.read_go_binary(_io(b"\x7fELF" + bytes(500_000))) == []
    truncated = _go_binary("go1.22.3", MODINFO)
    cut = truncated.index(gobinary.MAGIC, 200) + 40
    assert gobinary.read_go_binary(_io(truncated[:cut])) == []
