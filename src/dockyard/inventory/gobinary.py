"""Detector of Go binaries: the build information the Go linker embeds (``go version -m`` shows it) — the Go
version, the main module and every dependency module with its version — read by scanning an ELF executable's
bytes for the build-info header (``\\xff Go buildinf:`` at a 16-byte-aligned offset, the start of the
``.go.buildinfo`` section), in one forward pass with bounded memory.

Limits: only the inline-string format of Go 1.18 and later (older binaries are reported without modules);
ELF only (container images hold Linux binaries). A binary without build info is not an error: it has none.
"""

from __future__ import annotations

from typing import IO

from dockyard.inventory.records import PackageDBError, PackageRecord, RecordType, check_name, check_version

ELF_MAGIC = b"\x7fELF"
MAGIC = b"\xff Go buildinf:"
HEADER = 32
ALIGN = 16
CHUNK = 256 * 1024
MAX_INFO = 1024 * 1024  # version plus module information, far above any real binary's


def _uvarint(data: bytes, at: int) -> tuple[int, int] | None:
    value = shift = 0
    for i in range(at, min(at + 10, len(data))):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    return None


def _find_header(content: IO[bytes], head: bytes) -> bytes | None:
    """The bytes from the build-info header on (at most ``HEADER + MAX_INFO``), or None."""
    buf = bytearray(head)
    base = 0
    while True:
        start = 0
        while (i := buf.find(MAGIC, start)) >= 0:
            if (base + i) % ALIGN == 0:
                tail = bytes(buf[i:])
                while len(tail) < HEADER + MAX_INFO and (more := content.read(CHUNK)):
                    tail += more
                return tail[: HEADER + MAX_INFO]
            start = i + 1
        chunk = content.read(CHUNK)
        if not chunk:
            return None
        keep = len(MAGIC) - 1
        base += len(buf) - keep
        buf = buf[-keep:] + chunk


def _strings(blob: bytes) -> tuple[str, str] | None:
    if blob[15] & 0x2 == 0:
        return None  # pointer format (Go before 1.18): not read
    version_len = _uvarint(blob, HEADER)
    if version_len is None:
        return None
    size, at = version_len
    version = blob[at : at + size]
    mod_len = _uvarint(blob, at + size)
    if mod_len is None or len(version) != size:
        return None
    size, at = mod_len
    modinfo = blob[at : at + size]
    if len(modinfo) != size:
        return None
    if len(modinfo) >= 33 and modinfo[-17] == ord("\n"):
        modinfo = modinfo[16:-16]  # the sentinels the linker puts around it
    return version.decode("utf-8", "replace"), modinfo.decode("utf-8", "replace")


def _module(fields: list[str]) -> tuple[str, str] | None:
    if len(fields) < 3 or not fields[2] or fields[2] == "(devel)":
        return None
    return fields[1], fields[2]


def parse_modinfo(go_version: str, modinfo: str) -> list[PackageRecord]:
    """The modules of a binary's module information (``mod``, ``dep`` and ``=>`` replacement lines) and the Go
    standard library (``stdlib`` at the toolchain's version, ``v1.22.3``)."""
    modules: list[tuple[str, str]] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] in ("mod", "dep"):
            found = _module(fields)
            if found is not None:
                modules.append(found)
            elif fields[0] == "dep":
                modules.append(("", ""))  # keeps a following "=>" on its own dep
        elif fields[0] == "=>" and modules:
            found = _module(fields)
            modules[-1] = found if found is not None else ("", "")
    records: list[PackageRecord] = []
    for path, version in modules:
        if not path:
            continue
        try:
            records.append(
                PackageRecord(RecordType.GOLANG, check_name(path, "go module"), check_version(version, "go module"))
            )
        except PackageDBError:
            continue
    toolchain = go_version.split()[0] if go_version.split() else ""
    if toolchain.startswith("go") and toolchain[2:3].isdigit():
        records.append(PackageRecord(RecordType.GOLANG, "stdlib", "v" + toolchain[2:]))
    return records


def read_go_binary(content: IO[bytes]) -> list[PackageRecord]:
    """The Go modules an executable was built from; nothing for a file that is not a Go ELF binary."""
    head = content.read(CHUNK)
    if not head.startswith(ELF_MAGIC):
        return []
    blob = _find_header(content, head)
    if blob is None or len(blob) < HEADER:
        return []
    found = _strings(blob)
    if found is None:
        return []
    return parse_modinfo(*found)
