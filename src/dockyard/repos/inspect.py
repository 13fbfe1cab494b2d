"""One tag looked at closely, for the web hub's tag page: the platforms of an index, each platform's layers with
their sizes and ``created_by`` history lines, the parts of its config people read (env, entrypoint, cmd, user,
working directory, labels, exposed ports), and the artifacts that refer to it (OCI referrers: signatures, SBOMs,
attestations, others).

Access is the tag service's (``TagService.get_tag``: a private repository the actor may not pull is
``NotFound("repository")``); manifests come from the registry's ``ManifestService`` and configs from
``BlobService.read_small``. Nothing here trusts stored content: odd configs give empty fields, never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.authz.principal import Principal
from dockyard.core.jsonparse import loads_limited
from dockyard.core.manifest import ParsedManifest, parse_manifest
from dockyard.errors import DomainError, NotFound
from dockyard.registry.blobs import BlobService
from dockyard.registry.listing import ListingService
from dockyard.registry.manifests import ManifestService
from dockyard.repos.access import IMAGE_CONFIG_TYPES, candidate_names
from dockyard.repos.images import MAX_CONFIG_BYTES, ImageLayer, layers_of, parse_config, platform_of
from dockyard.repos.tags import TagService, TagView

MAX_PLATFORMS = 64
MAX_ITEMS = 500  # env entries, labels, ports shown per config
MAX_TEXT = 4096

SIGNATURE_TYPES = ("application/vnd.dev.cosign.artifact.sig.v1+json", "application/vnd.dev.sigstore.bundle")
SBOM_MARKERS = ("spdx", "cyclonedx", "syft", "sbom")
ATTESTATION_MARKERS = ("in-toto", "intoto", "attestation", "provenance", "slsa")


@dataclass(frozen=True, slots=True)
class ConfigView:
    """What the tag page shows of an image config."""

    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    user: str = ""
    working_dir: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    created: str = ""


@dataclass(frozen=True, slots=True)
class PlatformView:
    platform: str
    digest: str
    size: int
    layers: tuple[ImageLayer, ...]
    config: ConfigView | None  # None: no image config (an artifact) or unreadable


@dataclass(frozen=True, slots=True)
class ReferrerView:
    kind: str  # signature | sbom | attestation | artifact
    digest: str
    artifact_type: str
    media_type: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TagDetail:
    tag: TagView
    repository: str  # the registry name
    is_index: bool
    platforms: tuple[PlatformView, ...]
    referrers: tuple[ReferrerView, ...] = field(default=())


def _strings(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(item[:MAX_TEXT] for item in value[:MAX_ITEMS] if isinstance(item, str))


def config_view(data: bytes | None) -> ConfigView | None:
    """The shown parts of an image config; None when it is not a JSON object. Never raises."""
    if data is None:
        return None
    try:
        doc = loads_limited(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    cfg = doc.get("config")
    cfg = cfg if isinstance(cfg, dict) else {}
    labels = cfg.get("Labels")
    ports = cfg.get("ExposedPorts")
    return ConfigView(
        env=_strings(cfg.get("Env")) or (),
        entrypoint=_strings(cfg.get("Entrypoint")),
        cmd=_strings(cfg.get("Cmd")),
        user=str(cfg.get("User") or "")[:MAX_TEXT],
        working_dir=str(cfg.get("WorkingDir") or "")[:MAX_TEXT],
        labels=tuple((str(k)[:MAX_TEXT], str(v)[:MAX_TEXT]) for k, v in list(labels.items())[:MAX_ITEMS])
        if isinstance(labels, dict)
        else (),
        exposed_ports=tuple(str(p)[:64] for p in list(ports)[:MAX_ITEMS]) if isinstance(ports, dict) else (),
        created=str(doc.get("created") or "")[:64],
    )


def referrer_kind(artifact_type: str) -> str:
    lowered = artifact_type.lower()
    if artifact_type.startswith(SIGNATURE_TYPES) or "signature" in lowered:
        return "signature"
    if any(marker in lowered for marker in SBOM_MARKERS):
        return "sbom"
    if any(marker in lowered for marker in ATTESTATION_MARKERS):
        return "attestation"
    return "artifact"


def platform_label(raw: Any) -> str:
    platform = platform_of(raw)
    parts = [platform.os, platform.architecture] + ([platform.variant] if platform.variant else [])
    return "/".join(parts)


def _parse(content: bytes, media_type: str) -> ParsedManifest | None:
    try:
        return parse_manifest(content, media_type)
    except DomainError:
        return None


class ImageInspector:
    """Builds ``TagDetail``. Safe for concurrent use."""

    def __init__(self, tags: TagService, manifests: ManifestService, blobs: BlobService, listing: ListingService):
        self.tags = tags
        self.manifests = manifests
        self.blobs = blobs
        self.listing = listing

    async def tag_detail(self, actor: Principal, namespace: str, name: str, tag: str) -> TagDetail:
        """Raises ``NotFound("repository"|"tag")`` as ``TagService.get_tag`` does."""
        view = await self.tags.get_tag(actor, namespace, name, tag)
        repository = await self._registry_name(namespace, name, view)
        top = await self.manifests.get(repository, view.digest)
        parsed = _parse(top.content, top.media_type)
        platforms: list[PlatformView] = []
        if parsed is not None and parsed.is_index:
            for child in parsed.children[:MAX_PLATFORMS]:
                annotations: Mapping[str, str] = child.annotations or {}
                if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
                    continue
                try:
                    stored = await self.manifests.get(repository, str(child.digest))
                except NotFound:
                    continue
                child_parsed = _parse(stored.content, stored.media_type)
                if child_parsed is not None and not child_parsed.is_index:
                    platforms.append(
                        await self._platform(platform_label(child.platform), str(child.digest), child_parsed)
                    )
        elif parsed is not None:
            first = view.images[0] if view.images else None
            label = (
                platform_label({"os": first.os, "architecture": first.architecture, "variant": first.variant})
                if first
                else ""
            )
            platforms.append(await self._platform(label, view.digest, parsed))
        referrers = tuple(
            ReferrerView(
                kind=referrer_kind(str(d.get("artifactType") or "")),
                digest=str(d["digest"]),
                artifact_type=str(d.get("artifactType") or ""),
                media_type=str(d["mediaType"]),
                size=int(d["size"]),
                annotations=tuple((str(k), str(v)[:MAX_TEXT]) for k, v in (d.get("annotations") or {}).items()),
            )
            for d in await self.listing.referrers(repository, view.digest, None)
        )
        return TagDetail(view, repository, parsed is not None and parsed.is_index, tuple(platforms), referrers)

    async def _registry_name(self, namespace: str, name: str, view: TagView) -> str:
        """The registry name of the repository the tag service found (``library`` ones may be either form)."""
        for candidate in candidate_names(namespace, name):
            try:
                await self.manifests.get(candidate, view.digest)
            except NotFound:
                continue
            return candidate
        raise NotFound("tag", "tag not found", {"tag": view.name[:200]})

    async def _platform(self, label: str, digest: str, parsed: ParsedManifest) -> PlatformView:
        config: ConfigView | None = None
        history: tuple[tuple[str, bool], ...] = ()
        descriptor = parsed.config
        if (
            descriptor is not None
            and descriptor.media_type in IMAGE_CONFIG_TYPES
            and descriptor.size <= MAX_CONFIG_BYTES
        ):
            data = await self.blobs.read_small(str(descriptor.digest), descriptor.size)
            config = config_view(data)
            if data is not None:
                history = parse_config(data).history
        size = (descriptor.size if descriptor else 0) + sum(layer.size for layer in parsed.layers)
        return PlatformView(label, digest, size, layers_of(parsed.layers, history), config)
