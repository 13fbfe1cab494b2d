"""Building OCI image layouts on disk, offline: tar + gzip + JSON in Python, no registry and no network.

The layouts follow the image-spec's layout format (``oci-layout``, ``index.json``, ``blobs/sha256/…``), so
skopeo, podman and buildah read them with their ``oci:`` transport. Every byte is deterministic for a given
seed (fixed mtimes, sorted entries, gzip without a timestamp), so a test can predict each digest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST

BUSYBOX = Path("/usr/bin/busybox")  # busybox-static: one self-contained file, a realistic tiny rootfs
REF_NAME = "org.opencontainers.image.ref.name"
EPOCH = 1_700_000_000  # fixed mtime of every file, so layers are byte-for-byte reproducible
CREATED = "2023-11-14T22:13:20Z"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def as_dict(self) -> dict[str, str]:
        doc = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            doc["variant"] = self.variant
        return doc


AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64", "v8")


@dataclass
class BuiltImage:
    """One single-platform image written into a layout."""

    platform: Platform
    manifest_digest: str
    config_digest: str
    layer_digests: list[str]
    diff_ids: list[str]
    manifest: bytes


@dataclass
class Layout:
    """An OCI image layout directory and the digests of what it holds."""

    path: Path
    tag: str
    top_digest: str  # what index.json's entry for ``tag`` points at (an index, or a lone manifest)
    top_media_type: str
    images: list[BuiltImage] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """The ``oci:`` transport reference, e.g. ``oci:/tmp/x/layout:latest``."""
        return f"oci:{self.path}:{self.tag}"

    def blob_digests(self) -> set[str]:
        return blob_digests(self.path)


def blob_digests(layout: Path) -> set[str]:
    """Every ``sha256:…`` stored under ``blobs/`` of a layout."""
    return {f"sha256:{p.name}" for p in (layout / "blobs" / "sha256").iterdir()}


def read_blob(layout: Path, digest: str) -> bytes:
    algorithm, hexpart = digest.split(":", 1)
    return (layout / "blobs" / algorithm / hexpart).read_bytes()


def index_entry(layout: Path, tag: str) -> dict[str, Any]:
    """The descriptor in ``index.json`` named ``tag`` (fails the test if there is not exactly one)."""
    index = json.loads((layout / "index.json").read_text())
    entries = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    assert len(entries) == 1, f"{layout}/index.json has {len(entries)} entries named {tag!r}: {index}"
    entry: dict[str, Any] = entries[0]
    return entry


def _tar(files: dict[str, bytes], symlinks: dict[str, str]) -> bytes:
    """A layer tar: parent directories, regular files (0755) and symlinks, in sorted order."""
    buf = io.BytesIO()
    dirs: set[str] = set()
    for name in [*files, *symlinks]:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = EPOCH
            tar.addfile(info)
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            info.mtime = EPOCH
            tar.addfile(info, io.BytesIO(data))
        for name in sorted(symlinks):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = symlinks[name]
            info.mtime = EPOCH
            tar.addfile(info)
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    # Level 1: the busybox layer is ~2 MB and speed matters more than size here; mtime=0 keeps it reproducible.
    return gzip.compress(data, compresslevel=1, mtime=0)


class LayoutWriter:
    """Writes blobs into ``<path>/blobs/sha256`` and, at the end, ``index.json`` and ``oci-layout``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.entries: list[dict[str, Any]] = []

    def blob(self, data: bytes) -> str:
        hexdigest = sha256_hex(data)
        (self.path / "blobs" / "sha256" / hexdigest).write_bytes(data)
        return f"sha256:{hexdigest}"

    def descriptor(self, media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.blob(data), "size": len(data), **extra}

    def image(
        self, platform: Platform, layers: list[tuple[dict[str, bytes], dict[str, str]]], label: str
    ) -> BuiltImage:
        """Write the layers, a config naming their diff_ids, and an OCI manifest."""
        layer_descs: list[dict[str, Any]] = []
        diff_ids: list[str] = []
        for files, symlinks in layers:
            tar = _tar(files, symlinks)
            diff_ids.append(f"sha256:{sha256_hex(tar)}")
            layer_descs.append(self.descriptor(OCI_LAYER, _gzip(tar)))
        config = {
            "created": CREATED,
            "architecture": platform.architecture,
            "os": platform.os,
            **({"variant": platform.variant} if platform.variant else {}),
            "config": {
                "Env": ["PATH=/bin"],
                "Cmd": ["/bin/sh"],
                "Labels": {"dockyard.test": label},
            },
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": CREATED, "created_by": f"dockyard test layer {i}"} for i in range(len(layers))],
        }
        config_desc = self.descriptor(OCI_CONFIG, _json(config))
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config_desc,
                "layers": layer_descs,
                "annotations": {"org.opencontainers.image.title": label},
            }
        )
        digest = self.blob(manifest)
        return BuiltImage(
            platform, digest, config_desc["digest"], [d["digest"] for d in layer_descs], diff_ids, manifest
        )

    def tag(self, tag: str, media_type: str, data: bytes, **extra: Any) -> None:
        self.entries.append(
            {
                "mediaType": media_type,
                "digest": self.blob(data),
                "size": len(data),
                **extra,
                "annotations": {REF_NAME: tag},
            }
        )

    def finish(self) -> None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries}
        (self.path / "index.json").write_bytes(_json(index))


def _rootfs(platform: Platform, seed: str, busybox: Path) -> list[tuple[dict[str, bytes], dict[str, str]]]:
    """Two layers: a base (busybox on amd64, a stand-in on other architectures) and a small one on top.

    Both carry the seed, so no two tests share a layer: clients that remember where a layer already is (c/image's
    blob-info cache) could otherwise swap in another compression of it and change the manifest digests.
    """
    if platform.architecture == "amd64":
        base: dict[str, bytes] = {"bin/busybox": busybox.read_bytes()}
    else:
        # Never run: a stand-in binary with contents that differ per architecture.
        base = {"bin/busybox": f"#!not-a-binary {platform.architecture}\n".encode() * 64}
    base["etc/dockyard-base"] = f"{seed} {platform.architecture}\n".encode()
    links = {f"bin/{applet}": "busybox" for applet in ("sh", "echo", "cat", "ls", "uname")}
    top = {
        "etc/dockyard-arch": f"{platform.architecture}\n".encode(),
        "etc/dockyard-seed": f"{seed}\n".encode(),
    }
    return [(base, links), (top, {})]


def build_image_layout(
    path: Path, seed: str, *, tag: str = "latest", platform: Platform = AMD64, busybox: Path = BUSYBOX
) -> Layout:
    """A layout whose ``tag`` is one OCI image manifest (busybox + a small layer unique to ``seed``)."""
    writer = LayoutWriter(path)
    image = writer.image(platform, _rootfs(platform, seed, busybox), f"{seed}-{platform.architecture}")
    writer.tag(tag, OCI_MANIFEST, image.manifest, platform=platform.as_dict())
    writer.finish()
    return Layout(path, tag, image.manifest_digest, OCI_MANIFEST, [image])


def build_multiarch_layout(
    path: Path,
    seed: str,
    *,
    tag: str = "latest",
    platforms: tuple[Platform, ...] = (AMD64, ARM64),
    busybox: Path = BUSYBOX,
) -> Layout:
    """A layout whose ``tag`` is an OCI image index over one manifest per platform."""
    writer = LayoutWriter(path)
    images = [writer.image(p, _rootfs(p, seed, busybox), f"{seed}-{p.architecture}") for p in platforms]
    index = _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": img.manifest_digest,
                    "size": len(img.manifest),
                    "platform": img.platform.as_dict(),
                }
                for img in images
            ],
            "annotations": {"org.opencontainers.image.description": f"dockyard multi-arch test {seed}"},
        }
    )
    writer.tag(tag, OCI_INDEX, index)
    writer.finish()
    return Layout(path, tag, f"sha256:{sha256_hex(index)}", OCI_INDEX, images)
