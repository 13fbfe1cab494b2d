"""Parsing and validation of image manifests, indexes and artifacts (OCI and Docker schema 2).

``parse_manifest`` checks structure only; whether referenced content exists is the registry service's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard.core import mediatypes as mt
from dockyard.core.digest import Digest
from dockyard.core.jsonparse import JSONTooDeep, loads_limited
from dockyard.errors import DomainError, Invalid


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()

    @property
    def is_foreign(self) -> bool:
        """Never pushed to a registry: non-distributable layer types, or any descriptor with ``urls``."""
        return bool(self.urls) or self.media_type in mt.NON_DISTRIBUTABLE_LAYERS


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    artifact_type: str | None
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: Descriptor | None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES

    @property
    def referrer_artifact_type(self) -> str | None:
        """What the referrers API reports: ``artifactType``, else the config media type (manifests only)."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None:
            return self.config.media_type
        return None

    def blob_references(self) -> list[Descriptor]:
        """Blobs that must exist in the repository (config and distributable layers)."""
        refs = [self.config] if self.config is not None else []
        refs.extend(layer for layer in self.layers if not layer.is_foreign)
        return refs


def _invalid(message: str, detail: Any = None) -> Invalid:
    return Invalid("manifest", message, detail)


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise _invalid(f"{where}: descriptor must be an object")
    media_type = raw.get("mediaType")
    digest = raw.get("digest")
    size = raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}: mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise _invalid(f"{where}: digest must be a string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}: size must be a non-negative integer")
    try:
        parsed_digest = Digest.parse(digest)
    except DomainError as exc:
        raise _invalid(f"{where}: {exc.message}") from exc
    artifact_type = raw.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid(f"{where}: artifactType must be a string")
    annotations = _annotations(raw.get("annotations"), where)
    platform = raw.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise _invalid(f"{where}: platform must be an object")
    urls = raw.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _invalid(f"{where}: urls must be a list of strings")
    return Descriptor(media_type, parsed_digest, size, artifact_type, annotations, platform, tuple(urls))


def _annotations(raw: Any, where: str) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise _invalid(f"{where}: annotations must map strings to strings")
    return raw


def _detect_media_type(doc: dict[str, Any], content_type: str) -> str:
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise _invalid("mediaType must be a string")
    declared = mt.strip_parameters(content_type)
    if declared in mt.SCHEMA1_TYPES or body_type in mt.SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
        raise _invalid("Docker image manifest schema 1 is deprecated and not supported; push schema 2 or OCI")
    if body_type and declared not in mt.GENERIC_TYPES and body_type != declared:
        raise _invalid(
            f"manifest mediaType {body_type!r} does not match Content-Type {declared!r}",
            {"mediaType": body_type, "contentType": declared},
        )
    media_type = declared if declared not in mt.GENERIC_TYPES else (body_type or "")
    if not media_type:
        # No declared type anywhere: infer as the OCI spec allows for manifests without mediaType.
        media_type = mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST
    if media_type not in mt.MANIFEST_TYPES:
        raise _invalid(f"unsupported manifest media type {media_type[:200]!r}")
    return media_type


def parse_manifest(body: bytes, content_type: str) -> ParsedManifest:
    """Parse and structurally validate a manifest body; raise ``Invalid("manifest")`` with a precise reason."""
    try:
        doc = loads_limited(body)
    except JSONTooDeep as exc:
        raise _invalid(f"manifest nests arrays and objects deeper than {exc.max_depth} levels") from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, an integer too long
        raise _invalid(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    media_type = _detect_media_type(doc, content_type)
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid("artifactType must be a string")
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    annotations = _annotations(doc.get("annotations"), "manifest") or {}
    if media_type in mt.INDEXES:
        children_raw = doc.get("manifests")
        if not isinstance(children_raw, list):
            raise _invalid("index must have a manifests list")
        children = tuple(_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children_raw))
        return ParsedManifest(media_type, artifact_type, None, (), children, subject, annotations)
    if "manifests" in doc:
        raise _invalid("an image manifest must not have a manifests field")
    config = _descriptor(doc.get("config"), "config")
    layers_raw = doc.get("layers", [] if artifact_type else None)
    if not isinstance(layers_raw, list):
        raise _invalid("image manifest must have a layers list")
    layers = tuple(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers_raw))
    return ParsedManifest(media_type, artifact_type, config, layers, (), subject, annotations)
