"""Turning layer records into ``InstalledPackage``: ecosystems, distro releases and Package URLs; and reading
several files of a layer in one pass (``layers.tarstream.read_members``)."""

from __future__ import annotations

import io
from typing import IO

import pytest

from dockyard.inventory.image import installed, release_of
from dockyard.inventory.records import OsRelease, PackageRecord, RecordType
from dockyard.layers.tarstream import LayerFormatError, read_members
from tests.support.layers import E, layer

DEBIAN = OsRelease("debian", "12", "bookworm", None)


@pytest.mark.parametrize(
    ("os", "release"),
    [
        (DEBIAN, "12"),
        (OsRelease("ubuntu", "22.04", "jammy", None), "22.04"),
        (OsRelease("alpine", "3.19.1", None, None), "v3.19"),
        (OsRelease("rocky", "9.3", None, None), "9"),
        (OsRelease("debian", None, "trixie", None), None),
    ],
)
def test_release_of(os: OsRelease, release: str | None) -> None:
    assert release_of(os) == release


def test_installed_packages() -> None:
    deb = installed(
        PackageRecord(RecordType.DEB, "libc6", "2.36-9+deb12u7", "glibc", "2.36-9+deb12u4", "amd64"),
        DEBIAN,
        "sha256:l",
        "var/lib/dpkg/status",
    )
    assert (deb.ecosystem, deb.release, deb.osv_ecosystem, deb.match_name, deb.match_version) == (
        "Debian",
        "12",
        "Debian:12",
        "glibc",
        "2.36-9+deb12u4",
    )
    assert deb.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12"
    assert deb.path == "/var/lib/dpkg/status"
    rpm = installed(
        PackageRecord(RecordType.RPM, "openssl-libs", "1:3.0.7-25.el9", "openssl", None, "x86_64"),
        OsRelease("rocky", "9.3", None, None),
        "sha256:l",
        "p",
    )
    assert (rpm.ecosystem, rpm.release) == ("Rocky Linux", "9")
    assert rpm.purl == "pkg:rpm/rocky/openssl-libs@3.0.7-25.el9?arch=x86_64&distro=rocky-9.3&epoch=1"
    apk = installed(PackageRecord(RecordType.APK, "musl", "1.2.4-r2", arch="x86_64"), None, "sha256:l", "p")
    assert (apk.ecosystem, apk.release) == ("Alpine", None)
    assert (
        installed(PackageRecord(RecordType.PYPI, "Typing_Extensions", "4.12.2"), DEBIAN, "l", "p").purl
        == "pkg:pypi/typing-extensions@4.12.2"
    )
    go = installed(PackageRecord(RecordType.GOLANG, "golang.org/x/net", "v0.19.0"), DEBIAN, "l", "p")
    assert (go.ecosystem, go.release, go.purl) == ("Go", None, "pkg:golang/golang.org/x/net@v0.19.0")
    maven = installed(PackageRecord(RecordType.MAVEN, "org.slf4j:slf4j-api", "2.0.9"), None, "l", "p")
    assert maven.purl == "pkg:maven/org.slf4j/slf4j-api@2.0.9"


def _read(content: IO[bytes]) -> bytes:
    return content.read()


def test_read_members_reads_several_files_in_one_pass() -> None:
    blob = layer([E("a", data=b"A" * 300_000), E("d", kind="dir"), E("b", data=b"B"), E("c", data=b"C")])
    assert list(read_members(io.BytesIO(blob), {0: _read, 2: _read})) == [(0, b"A" * 300_000), (2, b"B")]
    with pytest.raises(LayerFormatError, match="not a regular file"):
        list(read_members(io.BytesIO(blob), {1: _read}))
    with pytest.raises(LayerFormatError, match="no entry"):
        list(read_members(io.BytesIO(blob), {9: _read}))
    with pytest.raises(LayerFormatError):
        list(read_members(io.BytesIO(blob[: len(blob) // 3]), {0: _read, 3: _read}))
