"""The sample image of ``dockyard sample-image``: a tiny multi-platform image built here, from nothing, so that a
first push needs no network and no other registry.

Each platform's program is assembled by this module: a few machine instructions (``write(1, message, length)``
then ``exit(0)``, raw Linux system calls) in a minimal static ELF executable with one loadable segment — no
compiler, no C library, no copied binary. The instructions are written out below for x86-64 and AArch64 (the
encodings are in the Intel SDM and the Arm ARM; the system call numbers in the kernel's ``unistd.h`` tables). The
image is an OCI index of one image per platform, each with a config and one gzip layer holding ``/hello``; every
byte is deterministic, so the same Dockyard version always produces the same digests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
import tarfile
from dataclasses import dataclass

INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"

PLATFORMS = ("amd64", "arm64")
_LOAD_ADDRESS = 0x400000  # 64 KiB-aligned, so that kernels with 64 KiB pages map it too
_ELF_HEADER_SIZE = 64
_PROGRAM_HEADER_SIZE = 56
_CODE_OFFSET = _ELF_HEADER_SIZE + _PROGRAM_HEADER_SIZE
_MACHINES = {"amd64": 0x3E, "arm64": 0xB7}  # EM_X86_64, EM_AARCH64


def message(architecture: str) -> bytes:
    return f"Hello from Dockyard! This sample image runs on linux/{architecture}.\n".encode()


def _amd64_code(text_address: int, length: int) -> bytes:
    return b"".join(
        (
            b"\xb8" + struct.pack("<I", 1),  # mov eax, 1        (write)
            b"\xbf" + struct.pack("<I", 1),  # mov edi, 1        (stdout)
            b"\xbe" + struct.pack("<I", text_address),  # mov esi, message
            b"\xba" + struct.pack("<I", length),  # mov edx, length
            b"\x0f\x05",  # syscall
            b"\xb8" + struct.pack("<I", 60),  # mov eax, 60       (exit)
            b"\x31\xff",  # xor edi, edi      (status 0)
            b"\x0f\x05",  # syscall
        )
    )


def _movz(register: int, value: int, shift: int = 0) -> int:
    """AArch64 ``MOVZ Xd, #value, LSL #shift``."""
    return 0xD2800000 | (shift // 16) << 21 | (value & 0xFFFF) << 5 | register


def _movk(register: int, value: int, shift: int) -> int:
    """AArch64 ``MOVK Xd, #value, LSL #shift``."""
    return 0xF2800000 | (shift // 16) << 21 | (value & 0xFFFF) << 5 | register


_SVC_0 = 0xD4000001


def _arm64_code(text_address: int, length: int) -> bytes:
    words = (
        _movz(0, 1),  # x0 = 1              (stdout)
        _movz(1, text_address & 0xFFFF),  # x1 = message (low half)
        _movk(1, text_address >> 16, 16),  #              (high half)
        _movz(2, length),  # x2 = length
        _movz(8, 64),  # x8 = 64             (write)
        _SVC_0,
        _movz(0, 0),  # x0 = 0              (status)
        _movz(8, 93),  # x8 = 93             (exit)
        _SVC_0,
    )
    return struct.pack(f"<{len(words)}I", *words)


def program(architecture: str) -> bytes:
    """The static ELF executable for ``architecture`` (``amd64`` or ``arm64``) that prints :func:`message`."""
    text = message(architecture)
    assemble = _amd64_code if architecture == "amd64" else _arm64_code
    code_length = len(assemble(0, 0))
    text_address = _LOAD_ADDRESS + _CODE_OFFSET + code_length
    code = assemble(text_address, len(text))
    size = _CODE_OFFSET + len(code) + len(text)
    header = b"\x7fELF" + bytes((2, 1, 1, 0)) + bytes(8)  # 64-bit, little-endian, version 1, System V
    header += struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        _MACHINES[architecture],
        1,  # EV_CURRENT
        _LOAD_ADDRESS + _CODE_OFFSET,  # entry point
        _ELF_HEADER_SIZE,  # program headers follow the ELF header
        0,  # no section headers
        0,  # flags
        _ELF_HEADER_SIZE,
        _PROGRAM_HEADER_SIZE,
        1,  # one program header
        64,  # section header size (none present)
        0,
        0,
    )
    segment = struct.pack(
        "<IIQQQQQQ",
        1,  # PT_LOAD
        5,  # PF_R | PF_X
        0,  # the whole file, headers included
        _LOAD_ADDRESS,
        _LOAD_ADDRESS,
        size,
        size,
        0x10000,
    )
    return header + segment + code + text


@dataclass(frozen=True)
class SampleImage:
    """An OCI index (``index``: its bytes), every blob it references by digest (its platform manifests
    included) and the digests of those manifests."""

    index: bytes
    blobs: dict[str, bytes]
    manifests: tuple[str, ...]

    @property
    def index_digest(self) -> str:
        return _digest(self.index)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _layer(executable: bytes) -> tuple[bytes, bytes]:
    """(the gzip layer, the uncompressed tar) holding ``/hello``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        entry = tarfile.TarInfo("hello")
        entry.size = len(executable)
        entry.mode = 0o755
        entry.mtime = 0
        archive.addfile(entry, io.BytesIO(executable))
    tar = buffer.getvalue()
    return gzip.compress(tar, mtime=0), tar


def build_sample_image(architectures: tuple[str, ...] = PLATFORMS) -> SampleImage:
    """The sample image for ``architectures`` (each of :data:`PLATFORMS`)."""
    blobs: dict[str, bytes] = {}
    entries: list[dict[str, object]] = []
    for architecture in architectures:
        layer, tar = _layer(program(architecture))
        config = _canonical(
            {
                "architecture": architecture,
                "os": "linux",
                "config": {"Entrypoint": ["/hello"]},
                "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]},
                "history": [{"created_by": "dockyard sample-image", "created": "1970-01-01T00:00:00Z"}],
            }
        )
        manifest = _canonical(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_MEDIA_TYPE,
                "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": _digest(config), "size": len(config)},
                "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": _digest(layer), "size": len(layer)}],
            }
        )
        for blob in (layer, config, manifest):
            blobs[_digest(blob)] = blob
        entries.append(
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": _digest(manifest),
                "size": len(manifest),
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    index = _canonical({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": entries})
    manifests = tuple(str(entry["digest"]) for entry in entries)
    return SampleImage(index=index, blobs=blobs, manifests=manifests)


def layout_files(image: SampleImage, tag: str) -> dict[str, bytes]:
    """The files of an OCI image layout holding ``image`` under ``tag`` (relative path → bytes)."""
    files = {"oci-layout": _canonical({"imageLayoutVersion": "1.0.0"})}
    for digest, blob in {**image.blobs, image.index_digest: image.index}.items():
        files[f"blobs/sha256/{digest.removeprefix('sha256:')}"] = blob
    reference = {
        "mediaType": INDEX_MEDIA_TYPE,
        "digest": image.index_digest,
        "size": len(image.index),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    files["index.json"] = _canonical({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": [reference]})
    return files
