"""Which image a filesystem request is about: a repository the caller may pull (``repos.access.resolve``: the one
authorizer, a private repository answering ``NotFound`` to whoever may not pull it), a reference in it (a tag or
a digest), and for an index the image of one platform (``os/arch[/variant]``; by default ``linux/amd64``, else the
first image that is not an attestation). The result names the image's config and its layers, bottom first.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.principal import Principal
from dockyard.core import mediatypes as mt
from dockyard.core.digest import looks_like_digest
from dockyard.core.manifest import Descriptor, ParsedManifest, parse_manifest
from dockyard.core.names import validate_tag
from dockyard.errors import DomainError, Invalid, NotFound, Unsupported
from dockyard.models import Manifest, Tag
from dockyard.repos.access import IMAGE_CONFIG_TYPES, resolve

DEFAULT_PLATFORM = ("linux", "amd64", None)
_ATTESTATION = "attestation-manifest"


@dataclass(frozen=True, slots=True)
class LayerRef:
    """A layer of an image, as its manifest describes it."""

    digest: str
    size: int
    media_type: str


@dataclass(frozen=True, slots=True)
class ImagePlatform:
    """One platform image: ``digest`` is its image manifest's (a child of the index ``reference`` named, or the
    manifest itself); ``platform`` is ``os/arch[/variant]`` as the index says, ``""`` for a single image (its
    config says)."""

    repository: str
    reference: str
    digest: str
    platform: str
    config_digest: str
    config_size: int
    layers: tuple[LayerRef, ...]

    @property
    def layer_digests(self) -> tuple[str, ...]:
        return tuple(layer.digest for layer in self.layers)


def parse_platform(text: str | None) -> tuple[str, str, str | None] | None:
    """``os/arch[/variant]`` → its parts; None for None. Raises ``Invalid("request")``."""
    if text is None:
        return None
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts) or len(text) > 100:
        raise Invalid("request", "platform must be os/arch[/variant], e.g. linux/amd64", {"platform": text[:100]})
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _platform_text(raw: object) -> tuple[str, str, str | None] | None:
    if not isinstance(raw, dict):
        return None
    os_, arch, variant = raw.get("os"), raw.get("architecture"), raw.get("variant")
    if not isinstance(os_, str) or not isinstance(arch, str):
        return None
    return os_, arch, variant if isinstance(variant, str) and variant else None


def _render(platform: tuple[str, str, str | None]) -> str:
    return "/".join(p for p in platform if p)


def _choose(index: ParsedManifest, wanted: tuple[str, str, str | None] | None) -> tuple[Descriptor, str]:
    candidates: list[tuple[Descriptor, tuple[str, str, str | None]]] = []
    for child in index.children:
        if child.annotations and child.annotations.get("vnd.docker.reference.type") == _ATTESTATION:
            continue
        platform = _platform_text(child.platform)
        if platform is not None and child.media_type in mt.IMAGE_MANIFESTS:
            candidates.append((child, platform))
    if wanted is None:
        for child, platform in candidates:
            if platform[:2] == DEFAULT_PLATFORM[:2]:
                return child, _render(platform)
        if candidates:
            return candidates[0][0], _render(candidates[0][1])
    else:
        for child, platform in candidates:
            if platform[:2] == wanted[:2] and (wanted[2] is None or platform[2] == wanted[2]):
                return child, _render(platform)
    raise NotFound("manifest", "no image for this platform", {"platform": _render(wanted) if wanted else None})


async def _manifest(conn: AsyncConnection, repo_id: int, reference: str) -> tuple[str, str, bytes]:
    if looks_like_digest(reference):
        query = select(Manifest.digest, Manifest.media_type, Manifest.content).where(
            Manifest.repository_id == repo_id, Manifest.digest == reference
        )
        row = (await conn.execute(query)).first()
        if row is None:
            raise NotFound("manifest", "manifest unknown", {"reference": reference[:200]})
        return row.digest, row.media_type, row.content
    try:
        validate_tag(reference)
    except Invalid:
        raise NotFound("tag", "tag not found", {"tag": reference[:200]}) from None
    query = (
        select(Manifest.digest, Manifest.media_type, Manifest.content)
        .select_from(Tag)
        .join(Manifest, Manifest.id == Tag.manifest_id)
        .where(Tag.repository_id == repo_id, Tag.name == reference)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound("tag", "tag not found", {"tag": reference[:200]})
    return row.digest, row.media_type, row.content


def _parsed(content: bytes, media_type: str) -> ParsedManifest:
    try:
        return parse_manifest(content, media_type)
    except DomainError:
        raise Unsupported("manifest", "the stored manifest cannot be read as an image") from None


async def resolve_image(
    conn: AsyncConnection, actor: Principal, namespace: str, name: str, reference: str, platform: str | None = None
) -> ImagePlatform:
    """The image ``reference`` (tag or digest) names in Hub repository ``namespace``/``name``, for ``platform``.

    Raises ``NotFound("repository")`` when the repository does not exist or the actor may not pull it,
    ``NotFound("tag"|"manifest")``, ``Invalid("request")`` for a malformed platform, ``Unsupported("manifest")``
    for an artifact that is not an image."""
    wanted = parse_platform(platform)
    record, _ = await resolve(conn, actor, namespace, name)
    digest, media_type, content = await _manifest(conn, record.id, reference)
    parsed = _parsed(content, media_type)
    chosen = ""
    if parsed.is_index:
        child, chosen = _choose(parsed, wanted)
        digest, media_type, content = await _manifest(conn, record.id, str(child.digest))
        parsed = _parsed(content, media_type)
        if parsed.is_index:
            raise Unsupported("manifest", "an index inside an index is not an image")
    if parsed.config is None or parsed.config.media_type not in IMAGE_CONFIG_TYPES:
        raise Unsupported("manifest", "not a container image (an artifact)", {"digest": digest})
    layers = tuple(
        LayerRef(str(layer.digest), layer.size, layer.media_type) for layer in parsed.layers if not layer.is_foreign
    )
    return ImagePlatform(
        repository=record.name,
        reference=reference,
        digest=digest,
        platform=chosen,
        config_digest=str(parsed.config.digest),
        config_size=parsed.config.size,
        layers=layers,
    )
