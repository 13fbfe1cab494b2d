"""Hostile layers pushed to a live server of their own: decompression bombs (gzip and zstd, a gigabyte of zeros in a
megabyte), a 10 GiB file that is only a tar header, malformed package databases (dpkg ``status``, apk
``installed``, ``rpmdb.sqlite``), corrupt gzip and zstd streams — each ends that image's inventory and scan with
the error recorded and visible in the API (the SBOM answers 422, the vulnerability report ``error``), in bounded
time and memory, and the server keeps serving. So do names that climb above the image root (``../``: a runtime
refuses to unpack such a layer) and a symlink loop on a path the inventory reads (``/etc/os-release``); absolute
names and loops elsewhere are no error. Nothing is ever written outside the data directory."""

from __future__ import annotations

import io
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard

from tests.support.layers import DEBIAN_12_OS_RELEASE, E, dpkg_status, layer, push_layers
from tests.support.oci import sha256
from tests.support.server import DockyardServer

GIB = 1024**3
ZEROS = bytes(8 * 1024 * 1024)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path_factory.mktemp("hostile") / "data")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def _header(name: str, size: int, mode: int = 0o644) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 1_700_000_000
    return info.tobuf(format=tarfile.PAX_FORMAT)


def gzip_bomb(zeros: int) -> bytes:
    """A gzip'd tar of one file of ``zeros`` zero bytes, built without compressing them: a deflate stream flushed
    to a byte boundary can be repeated, so one compressed 8 MiB run stands for all of them."""
    head = _header("srv/zeros.bin", zeros)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    run = compressor.compress(ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.compress(bytes(1024)) + compressor.flush(zlib.Z_FINISH)  # the end-of-archive blocks
    crc = zlib.crc32(head)
    for _ in range(zeros // len(ZEROS)):
        crc = zlib.crc32(ZEROS, crc)
    crc = zlib.crc32(bytes(1024), crc)
    total = len(head) + zeros + 1024
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = crc.to_bytes(4, "little") + (total % 2**32).to_bytes(4, "little")
    return gzip_header + start + run * (zeros // len(ZEROS)) + end + trailer


def zstd_bomb(zeros: int) -> bytes:
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [compressor.compress(_header("srv/zeros.bin", zeros))]
    parts.extend(compressor.compress(ZEROS) for _ in range(zeros // len(ZEROS)))
    parts.append(compressor.compress(bytes(1024)))
    parts.append(compressor.flush())
    return b"".join(parts)


def header_only(name: str, size: int) -> bytes:
    """A gzip'd tar whose entry claims ``size`` bytes that the stream does not hold (a 10 GiB 'sparse' file)."""
    out = io.BytesIO()
    out.write(_header(name, size, 0o755))
    out.write(b"\x7fELF" + bytes(60_000))
    return zlib.compress(out.getvalue(), wbits=31)


def rpmdb_garbage() -> bytes:
    return layer([E("var/lib/rpm/rpmdb.sqlite", data=b"SQLite format 3\x00" + b"\xff\xfe garbage" * 4000)])


def sbom(client: httpx.Client, repo: str, tag: str, *, timeout: float = 120) -> httpx.Response:
    ns, name = repo.split("/", 1)
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v2/repositories/{ns}/{name}/tags/{tag}/sbom")
        if response.status_code != 202:
            return response
        assert time.monotonic() < deadline, f"the inventory of {repo}:{tag} is still pending"
        time.sleep(0.3)


def vulnerabilities(client: httpx.Client, repo: str, tag: str) -> dict[str, Any]:
    ns, name = repo.split("/", 1)
    response = client.get(f"/api/v2/repositories/{ns}/{name}/tags/{tag}/vulnerabilities")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _tree_peak_rss_kib(pid: int) -> int:
    """The peak resident set of a process and its descendants, in KiB (``VmHWM``)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
        pending.extend(int(child) for child in children)
    return total


HOSTILE: dict[str, tuple[Callable[[], bytes], str]] = {
    "gzip-bomb": (lambda: gzip_bomb(GIB), "decompression bomb"),
    "zstd-bomb": (lambda: zstd_bomb(GIB), "decompression bomb"),
    "10-gib-file-header-only": (lambda: header_only("usr/bin/huge", 10 * GIB), "corrupt layer"),
    "10-gib-dpkg-status": (lambda: header_only("var/lib/dpkg/status", 10 * GIB), "corrupt layer"),
    "dpkg-status-junk": (
        lambda: layer([E("var/lib/dpkg/status", data=b"Package: a\nVersion\x00\xff\n\n" + bytes(range(256)) * 50)]),
        "/var/lib/dpkg/status",
    ),
    "apk-installed-junk": (
        lambda: layer([E("lib/apk/db/installed", data=b"P:\nV:\n\xff\xfe\x00" * 3000)]),
        "/lib/apk/db/installed",
    ),
    "rpmdb-sqlite-garbage": (rpmdb_garbage, "/var/lib/rpm/rpmdb.sqlite"),
    "corrupt-gzip": (lambda: b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + b"\x13\x37 not deflate" * 500, "layer"),
    "corrupt-zstd": (lambda: b"\x28\xb5\x2f\xfd" + b"\x00\x01 not a zstd frame" * 500, "layer"),
    "truncated-zstd": (lambda: layer([E("etc/hello", data=bytes(range(256)) * 400)], "zstd")[:-40], "layer"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_layer_ends_that_image_s_scan_with_a_recorded_error(
    client: httpx.Client, server: DockyardServer, kind: str
) -> None:
    make, expected = HOSTILE[kind]
    blob = make()
    assert len(blob) < 16 * 1024 * 1024
    repo = f"hostile/{kind}"
    base = layer([E("etc/os-release", data=DEBIAN_12_OS_RELEASE)])
    started = time.monotonic()
    push_layers(client, repo, "bad", [base, blob])

    response = sbom(client, repo, "bad")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:dockyard:inventory:failed"
    assert sha256(blob) in problem["detail"]
    assert expected in problem["detail"], problem["detail"]
    assert time.monotonic() - started < 90  # bounded: a bomb is refused early, a 10 GiB claim is not read
    report = vulnerabilities(client, repo, "bad")
    assert report["scanned"] is False
    assert report["error"], report
    assert sha256(blob) in report["error"]

    # the server keeps serving: another image of the same repository is inventoried and scanned
    status = dpkg_status(("bash", "5.2.15-2", None))
    good = layer([E("etc/os-release", data=DEBIAN_12_OS_RELEASE), E("var/lib/dpkg/status", data=status)])
    push_layers(client, repo, "good", [good])
    assert sbom(client, repo, "good").status_code == 200
    assert vulnerabilities(client, repo, "good")["error"] is None
    assert server.process is not None
    assert _tree_peak_rss_kib(server.process.pid) < 1024 * 1024  # < 1 GiB for the server with its workers
    spool = server.data_dir / "tmp" / "inventory"
    assert not spool.exists() or list(spool.iterdir()) == []


def _refused(client: httpx.Client, repo: str, blob: bytes, expected: str) -> None:
    response = sbom(client, repo, "v1")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert f"layer {sha256(blob)}" in detail, detail
    assert expected in detail, detail
    report = vulnerabilities(client, repo, "v1")
    assert report["scanned"] is False
    assert expected in report["error"], report


def test_names_climbing_out_of_the_root_end_the_scan_and_nothing_is_written_outside(
    client: httpx.Client, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    climb = "../" * 40
    status = dpkg_status(("bash", "5.2.15-2", None))
    blob = layer(
        [
            E("etc/os-release", data=DEBIAN_12_OS_RELEASE),
            E(f"{climb}{str(outside).lstrip('/')}/escaped", data=b"pwned"),
            E(f"{climb}var/lib/dpkg/status", data=status),
            E("etc/passwd-link", kind="hardlink", link=f"{climb}etc/passwd"),
        ]
    )
    push_layers(client, "hostile/traversal", "v1", [blob])
    _refused(client, "hostile/traversal", blob, f"3 entries name a path outside the image root (the first: '{climb}")
    assert list(outside.iterdir()) == []


def test_a_symlink_loop_on_a_path_the_inventory_reads_ends_the_scan(client: httpx.Client) -> None:
    status = dpkg_status(("bash", "5.2.15-2", None))
    blob = layer(
        [
            E("etc/os-release", kind="symlink", link="../etc/os-loop-a"),
            E("etc/os-loop-a", kind="symlink", link="os-loop-b"),
            E("etc/os-loop-b", kind="symlink", link="/etc/os-loop-a"),
            E("usr/lib/os-release", kind="symlink", link="../../usr/lib/os-release"),
            E("var/lib/dpkg/status", data=status),
        ]
    )
    push_layers(client, "hostile/loop", "v1", [blob])
    _refused(client, "hostile/loop", blob, "too many levels of symbolic links")


def test_absolute_names_and_loops_the_inventory_never_follows_are_no_error(
    client: httpx.Client, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    status = dpkg_status(("bash", "5.2.15-2", None))
    blob = layer(
        [
            E("/usr/lib/os-release", data=DEBIAN_12_OS_RELEASE),
            E("/etc/os-release", kind="symlink", link="../usr/lib/os-release"),
            E(f"{outside}/absolute", data=b"pwned"),
            E("/var/lib/dpkg/status", data=status),
            E("app/node_modules/loop", kind="symlink", link="../node_modules/loop"),
        ]
    )
    push_layers(client, "hostile/absolute", "v1", [blob])
    response = sbom(client, "hostile/absolute", "v1")
    assert response.status_code == 200, response.text
    names = {p["name"] for p in response.json()["packages"]}
    assert "bash" in names  # found at /var/lib/dpkg/status: the name is taken under the image root
    assert list(outside.iterdir()) == []
    assert vulnerabilities(client, "hostile/absolute", "v1")["error"] is None
