"""The sample image's programs are real executables: the host's runs and prints its greeting; the AArch64 one
disassembles (LLVM's disassembler) to the instructions it is meant to be; the image's digests are stable."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from dockyard.core.sample_image import build_sample_image, layout_files, message, program


def test_the_amd64_program_runs_and_prints_its_greeting(tmp_path: Path) -> None:
    if platform.machine() != "x86_64":
        pytest.skip("runs natively on x86-64 only")
    executable = tmp_path / "hello"
    executable.write_bytes(program("amd64"))
    executable.chmod(0o755)
    result = subprocess.run([executable], capture_output=True, check=False, timeout=10)
    assert result.returncode == 0
    assert result.stdout == message("amd64") == b"Hello from Dockyard! This sample image runs on linux/amd64.\n"


def test_the_arm64_program_is_write_then_exit() -> None:
    llvm_mc = shutil.which("llvm-mc")
    if llvm_mc is None:
        pytest.skip("llvm-mc (LLVM's assembler/disassembler) is not installed")
    elf = program("arm64")
    assert elf[:4] == b"\x7fELF"
    assert struct.unpack_from("<H", elf, 18)[0] == 0xB7
    (entry,) = struct.unpack_from("<Q", elf, 24)
    code = elf[entry - 0x400000 : entry - 0x400000 + 36]
    listing = subprocess.run(
        [llvm_mc, "--disassemble", "-triple=aarch64"],
        input=" ".join(hex(byte) for byte in code),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    instructions = [" ".join(line.split()) for line in listing.splitlines() if line.strip() and ".text" not in line]
    text_address = entry + 36
    assert instructions == [
        "mov x0, #1",
        f"mov x1, #{text_address & 0xFFFF}",
        f"movk x1, #{text_address >> 16}, lsl #16",
        f"mov x2, #{len(message('arm64'))}",
        "mov x8, #64",
        "svc #0",
        "mov x0, #0",
        "mov x8, #93",
        "svc #0",
    ]
    assert elf[text_address - 0x400000 :] == message("arm64")


def test_the_image_is_a_two_platform_index_with_one_layer_each() -> None:
    image = build_sample_image()
    assert image.index_digest == build_sample_image().index_digest  # deterministic
    index = json.loads(image.index)
    assert [entry["platform"]["architecture"] for entry in index["manifests"]] == ["amd64", "arm64"]
    for entry in index["manifests"]:
        manifest = json.loads(image.blobs[entry["digest"]])
        config = json.loads(image.blobs[manifest["config"]["digest"]])
        layer = image.blobs[manifest["layers"][0]["digest"]]
        tar = gzip.decompress(layer)
        assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(tar).hexdigest()]
        assert config["config"]["Entrypoint"] == ["/hello"]
        with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
            member = archive.getmember("hello")
            assert member.mode == 0o755
            extracted = archive.extractfile(member)
            assert extracted is not None
            assert extracted.read() == program(entry["platform"]["architecture"])
    for digest, blob in image.blobs.items():
        assert digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    files = layout_files(image, "v1")
    assert json.loads(files["index.json"])["manifests"][0]["annotations"] == {"org.opencontainers.image.ref.name": "v1"}
    assert len([name for name in files if name.startswith("blobs/")]) == len(image.blobs) + 1
