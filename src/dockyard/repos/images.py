"""The platform images behind tags, as Docker Hub lists them under a tag's ``images``.

An image manifest is one image: its platform and the instruction behind each layer come from its config blob
(small JSON, read from blob storage). An index is one image per platform child: the platform from the index's
descriptor, the size and layers from the child manifest stored in the DB (no config reads, so a page of
multi-platform tags stays cheap). Configs are content-addressed and immutable, so what was parsed is cached.

Nothing here trusts stored content: a config that is not JSON, too large, missing or oddly shaped gives
``unknown`` fields, never an error.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, null, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.jsonparse import loads_limited
from dockyard.core.manifest import Descriptor, ParsedManifest, parse_manifest
from dockyard.errors import DomainError
from dockyard.models import Blob, Manifest
from dockyard.registry.blobs import BlobService
from dockyard.repos.access import IMAGE_CONFIG_TYPES

MAX_CONFIG_BYTES = 1024 * 1024
# Manifests larger than this are not loaded to describe their images (a page of tags stays small in memory
# whatever was pushed); real image manifests and indexes are a few KiB.
MAX_DESCRIBED_MANIFEST = 512 * 1024
CONFIG_READ_CONCURRENCY = 8
CONFIG_CACHE_SIZE = 2048
MAX_INSTRUCTION = 4096
UNKNOWN = "unknown"
_ATTESTATION = "attestation-manifest"


@dataclass(frozen=True, slots=True)
class ImageLayer:
    """A layer (``digest`` and ``size``), or a history step that made no layer (``digest`` None, size 0)."""

    digest: str | None
    size: int
    instruction: str


@dataclass(frozen=True, slots=True)
class TagImage:
    architecture: str
    features: str
    variant: str | None
    digest: str
    layers: tuple[ImageLayer, ...]
    os: str
    os_features: str
    os_version: str | None
    size: int
    status: str
    last_pulled: datetime | None
    last_pushed: datetime | None


@dataclass(frozen=True, slots=True)
class Platform:
    architecture: str = UNKNOWN
    os: str = UNKNOWN
    variant: str | None = None
    os_version: str | None = None
    os_features: str = ""
    features: str = ""


@dataclass(frozen=True, slots=True)
class ConfigInfo:
    platform: Platform = field(default_factory=Platform)
    # One entry per history step: (instruction, whether it made a layer).
    history: tuple[tuple[str, bool], ...] = ()


UNKNOWN_CONFIG = ConfigInfo()


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    """A stored manifest as the tag queries read it (``content`` None: too large to describe)."""

    digest: str
    media_type: str
    content: bytes | None
    created_at: datetime | None


def described_content() -> Any:
    """``manifests.content`` when at most ``MAX_DESCRIBED_MANIFEST`` bytes, else NULL (a column to select)."""
    return case((Manifest.size <= MAX_DESCRIBED_MANIFEST, Manifest.content), else_=null()).label("content")


def _text(value: Any, default: str | None) -> str | None:
    return value[:255] if isinstance(value, str) and value else default


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(item[:255] for item in value if isinstance(item, str))[:1024]
    return ""


def platform_of(raw: Any) -> Platform:
    """From an index descriptor's ``platform`` or an image config (same keys). Never raises."""
    if not isinstance(raw, dict):
        return Platform()
    return Platform(
        architecture=_text(raw.get("architecture"), UNKNOWN) or UNKNOWN,
        os=_text(raw.get("os"), UNKNOWN) or UNKNOWN,
        variant=_text(raw.get("variant"), None),
        os_version=_text(raw.get("os.version"), None),
        os_features=_joined(raw.get("os.features")),
        features=_joined(raw.get("features")),
    )


def instruction_of(created_by: Any) -> str:
    """Docker Hub's rendering of a history step: ``#(nop)`` steps (CMD, ENV, …) without the shell prefix, shell
    steps of the legacy builder as ``RUN …``, BuildKit's marker comment dropped."""
    if not isinstance(created_by, str):
        return ""
    text = created_by.strip()
    if text.endswith("# buildkit"):
        text = text.removesuffix("# buildkit").rstrip()
    nop = "/bin/sh -c #(nop) "
    if text.startswith(nop):
        text = text[len(nop) :].strip()
    elif text.startswith("/bin/sh -c "):
        text = f"RUN {text}"
    return text[:MAX_INSTRUCTION]


def parse_config(data: bytes) -> ConfigInfo:
    """Platform and history of an image config. Never raises: garbage gives ``UNKNOWN_CONFIG``."""
    try:
        doc = loads_limited(data)
    except (ValueError, RecursionError):
        return UNKNOWN_CONFIG
    if not isinstance(doc, dict):
        return UNKNOWN_CONFIG
    history = doc.get("history")
    steps: list[tuple[str, bool]] = []
    if isinstance(history, list):
        for entry in history:
            if isinstance(entry, dict):
                steps.append((instruction_of(entry.get("created_by")), entry.get("empty_layer") is not True))
    return ConfigInfo(platform_of(doc), tuple(steps))


def layers_of(descriptors: Sequence[Descriptor], history: Sequence[tuple[str, bool]] = ()) -> tuple[ImageLayer, ...]:
    """Layers with the history step that made each, history steps without a layer in between (as Hub shows)."""
    layers: list[ImageLayer] = []
    remaining = iter(descriptors)
    for instruction, made_layer in history:
        if not made_layer:
            layers.append(ImageLayer(None, 0, instruction))
            continue
        descriptor = next(remaining, None)
        if descriptor is None:  # history longer than the layers: the config does not match; stop guessing
            break
        layers.append(ImageLayer(str(descriptor.digest), descriptor.size, instruction))
    layers.extend(ImageLayer(str(d.digest), d.size, "") for d in remaining)
    return tuple(layers)


def _parse(record: ManifestRecord) -> ParsedManifest | None:
    if record.content is None:
        return None
    try:
        return parse_manifest(record.content, record.media_type)
    except DomainError:
        return None


def _image_size(parsed: ParsedManifest) -> int:
    config = parsed.config.size if parsed.config is not None else 0
    return config + sum(layer.size for layer in parsed.layers)


def _is_attestation(child: Descriptor) -> bool:
    return bool(child.annotations and child.annotations.get("vnd.docker.reference.type") == _ATTESTATION)


def _image_config(parsed: ParsedManifest) -> str | None:
    if parsed.config is not None and parsed.config.media_type in IMAGE_CONFIG_TYPES:
        return str(parsed.config.digest)
    return None


@dataclass(frozen=True, slots=True)
class ImagePlan:
    """What ``ImageResolver.prepare`` read from the DB; ``finish`` reads the configs and builds the images."""

    manifests: dict[str, tuple[ManifestRecord, ParsedManifest | None]]
    children: dict[str, tuple[ManifestRecord, ParsedManifest | None]]
    config_sizes: dict[str, int]


class ImageResolver:
    """Builds ``TagImage`` lists for manifests of one repository. Holds a bounded cache of parsed configs;
    safe for concurrent use."""

    def __init__(
        self,
        blobs: BlobService,
        *,
        concurrency: int = CONFIG_READ_CONCURRENCY,
        cache_size: int = CONFIG_CACHE_SIZE,
    ) -> None:
        self.blobs = blobs
        self.concurrency = concurrency
        self.cache_size = cache_size
        self._cache: OrderedDict[str, ConfigInfo] = OrderedDict()

    async def prepare(self, conn: AsyncConnection, repo_id: int, manifests: Iterable[ManifestRecord]) -> ImagePlan:
        """The DB part: index children of ``manifests`` and the sizes of the configs to read."""
        parsed = {m.digest: (m, _parse(m)) for m in manifests}
        wanted_children = {
            str(child.digest)
            for _, p in parsed.values()
            if p is not None and p.is_index
            for child in p.children
            if not _is_attestation(child)
        }
        children: dict[str, tuple[ManifestRecord, ParsedManifest | None]] = {}
        if wanted_children:
            rows = await conn.execute(
                select(Manifest.digest, Manifest.media_type, described_content(), Manifest.created_at).where(
                    Manifest.repository_id == repo_id, Manifest.digest.in_(sorted(wanted_children))
                )
            )
            for row in rows:
                record = ManifestRecord(row.digest, row.media_type, row.content, row.created_at)
                children[record.digest] = (record, _parse(record))
        configs = {
            digest
            for _, p in parsed.values()
            if p is not None and not p.is_index and (digest := _image_config(p)) is not None
        }
        sizes: dict[str, int] = {}
        if configs:
            rows = await conn.execute(select(Blob.digest, Blob.size).where(Blob.digest.in_(sorted(configs))))
            sizes = {row.digest: int(row.size) for row in rows}
        return ImagePlan(parsed, children, sizes)

    async def finish(self, plan: ImagePlan) -> dict[str, tuple[TagImage, ...]]:
        """Read the configs (concurrently, a few at a time) and build each manifest's images. Call it after the
        DB connection is released."""
        configs = await self._load_configs(plan.config_sizes)
        return {digest: self._images(record, p, plan, configs) for digest, (record, p) in plan.manifests.items()}

    @staticmethod
    def _images(
        record: ManifestRecord, parsed: ParsedManifest | None, plan: ImagePlan, configs: Mapping[str, ConfigInfo]
    ) -> tuple[TagImage, ...]:
        if parsed is None:
            return ()
        if not parsed.is_index:
            config = _image_config(parsed)
            info = configs.get(config, UNKNOWN_CONFIG) if config is not None else UNKNOWN_CONFIG
            own = layers_of(parsed.layers, info.history)
            return (_tag_image(info.platform, record.digest, own, _image_size(parsed), record.created_at),)
        images: list[TagImage] = []
        for child in parsed.children:
            if _is_attestation(child):
                continue
            found = plan.children.get(str(child.digest))
            child_record, child_parsed = found if found is not None else (None, None)
            if child_record is None or child_parsed is None or child_parsed.is_index:
                layers: tuple[ImageLayer, ...] = ()
                size = child.size
            else:
                layers = layers_of(child_parsed.layers)
                size = _image_size(child_parsed)
            pushed = child_record.created_at if child_record is not None else record.created_at
            images.append(_tag_image(platform_of(child.platform), str(child.digest), layers, size, pushed))
        return tuple(images)

    async def _load_configs(self, sizes: Mapping[str, int]) -> dict[str, ConfigInfo]:
        """The parsed config of each digest in ``sizes`` (stored blobs): from the cache, else read."""
        found: dict[str, ConfigInfo] = {}
        todo: list[str] = []
        for digest in sizes:
            cached = self._cache.get(digest)
            if cached is None:
                todo.append(digest)
            else:
                self._cache.move_to_end(digest)
                found[digest] = cached
        if not todo:
            return found
        gate = asyncio.Semaphore(self.concurrency)

        async def load(digest: str) -> None:
            async with gate:
                info = await self._read_config(digest, sizes[digest])
            found[digest] = info
            self._remember(digest, info)

        await asyncio.gather(*(load(d) for d in todo))
        return found

    async def _read_config(self, digest: str, size: int) -> ConfigInfo:
        if size > MAX_CONFIG_BYTES:
            return UNKNOWN_CONFIG
        content = await self.blobs.read_small(digest, size)
        if content is None:  # missing or unreadable (logged)
            return UNKNOWN_CONFIG
        return parse_config(content)

    def _remember(self, digest: str, info: ConfigInfo) -> None:
        self._cache[digest] = info
        self._cache.move_to_end(digest)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def _tag_image(
    platform: Platform, digest: str, layers: tuple[ImageLayer, ...], size: int, last_pushed: datetime | None
) -> TagImage:
    return TagImage(
        architecture=platform.architecture,
        features=platform.features,
        variant=platform.variant,
        digest=digest,
        layers=layers,
        os=platform.os,
        os_features=platform.os_features,
        os_version=platform.os_version,
        size=size,
        status="active",
        last_pulled=None,
        last_pushed=last_pushed,
    )
