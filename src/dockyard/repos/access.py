"""What the hub services share: Hub-style addressing of a repository (namespace + name), look-up under
authorization that never reveals a private repository to someone who may not see it, LIKE patterns, and the
classification of content as ``image`` or ``artifact``.

Addressing: the Hub API names a repository by namespace and name; the registry by its full path. ``ns/a/b`` is
namespace ``ns``, name ``a/b``. One-component registry names (``alpine``) belong to ``library``, whose
repositories may also be pushed as ``library/alpine``: the Hub name ``library``/``alpine`` finds either (the
one-component name first).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.authorizer import Permission, RepositoryResource, require
from dockyard.authz.permissions import Facts, Level
from dockyard.authz.principal import Principal
from dockyard.core import mediatypes as mt
from dockyard.core.names import LIBRARY
from dockyard.errors import NotFound
from dockyard.events.bus import OutboxEvent
from dockyard.events.outbox import MANIFEST_PUSHED
from dockyard.models import Repository

LIKE_ESCAPE = "\\"

IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


def new_image_pushed(event: OutboxEvent) -> tuple[str, str] | None:
    """(repository, digest) if the event says a push stored an image manifest the repository did not hold yet:
    what the layer index, the inventory and scanning act on. A push that only (re)tags a stored manifest is not new
    (its payload's ``new`` is false), so tagging one image 5,000 times queues no work."""
    if (
        event.type == MANIFEST_PUSHED
        and event.repository
        and event.digest
        and event.media_type in mt.IMAGE_MANIFESTS
        and event.payload.get("artifactType") in IMAGE_CONFIG_TYPES
        and event.payload.get("new", True) is not False
    ):
        return event.repository, event.digest
    return None


def full_name(namespace: str, name: str) -> str:
    """The registry name of Hub repository ``namespace``/``name`` when it is created."""
    if namespace == LIBRARY and "/" not in name:
        return name
    return f"{namespace}/{name}"


def candidate_names(namespace: str, name: str) -> list[str]:
    """Registry names the Hub repository may have, preferred first."""
    if namespace == LIBRARY and "/" not in name:
        return [name, f"{LIBRARY}/{name}"]
    return [f"{namespace}/{name}"]


def short_name(full: str, namespace: str) -> str:
    """The Hub name of registry repository ``full``: the path after its namespace."""
    prefix = f"{namespace}/"
    return full[len(prefix) :] if full.startswith(prefix) else full


def escape_like(text: str) -> str:
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", f"{LIKE_ESCAPE}%").replace("_", f"{LIKE_ESCAPE}_")


def like_contains(text: str) -> str:
    return f"%{escape_like(text)}%"


def like_prefix(text: str) -> str:
    return f"{escape_like(text)}%"


def content_type_of(media_type: str, artifact_type: str | None) -> str:
    """``image`` for images and indexes of images, ``artifact`` for anything else (Helm charts, SBOMs, …).
    ``artifact_type`` is the stored one: the manifest's ``artifactType``, else its config media type."""
    if media_type in mt.INDEXES:
        return "image" if artifact_type is None else "artifact"
    if artifact_type is None or artifact_type in IMAGE_CONFIG_TYPES:
        return "image"
    return "artifact"


@dataclass(frozen=True, slots=True)
class RepositoryRecord:
    """One ``repositories`` row as the hub services read it."""

    id: int
    name: str
    namespace: str
    is_private: bool
    description: str
    full_description: str
    star_count: int
    pull_count: int
    created_at: datetime
    last_pushed_at: datetime | None
    last_pulled_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> RepositoryRecord:
        """From a result row holding ``SUMMARY_COLUMNS`` (and maybe ``full_description``)."""
        return cls(
            id=row.id,
            name=row.name,
            namespace=row.namespace,
            is_private=bool(row.is_private),
            description=row.description or "",
            full_description=getattr(row, "full_description", "") or "",
            star_count=int(row.star_count or 0),
            pull_count=int(row.pull_count or 0),
            created_at=row.created_at,
            last_pushed_at=row.last_pushed_at,
            last_pulled_at=row.last_pulled_at,
            updated_at=row.updated_at,
        )

    @property
    def short_name(self) -> str:
        return short_name(self.name, self.namespace)

    @property
    def last_updated(self) -> datetime:
        """Docker Hub's ``last_updated``: the last push, else the creation."""
        return self.last_pushed_at or self.created_at

    @property
    def last_modified(self) -> datetime:
        """The last change of content or metadata."""
        return max(self.updated_at or self.created_at, self.last_updated)


# Every column but the (up to 25,000 characters long) full description, for lists.
SUMMARY_COLUMNS = (
    Repository.id,
    Repository.name,
    Repository.namespace,
    Repository.is_private,
    Repository.description,
    Repository.star_count,
    Repository.pull_count,
    Repository.created_at,
    Repository.last_pushed_at,
    Repository.last_pulled_at,
    Repository.updated_at,
)
DETAIL_COLUMNS = (*SUMMARY_COLUMNS, Repository.full_description)


def not_found(namespace: str, name: str) -> NotFound:
    return NotFound("repository", "repository not found", {"namespace": namespace[:255], "name": name[:255]})


async def find_record(conn: AsyncConnection, namespace: str, name: str) -> RepositoryRecord | None:
    """The repository the Hub names ``namespace``/``name``, whoever may see it."""
    candidates = candidate_names(namespace, name)
    rows = (await conn.execute(select(*DETAIL_COLUMNS).where(Repository.name.in_(candidates)))).all()
    by_name = {row.name: row for row in rows}
    for candidate in candidates:
        row = by_name.get(candidate)
        if row is not None and row.namespace == namespace:
            return RepositoryRecord.from_row(row)
    return None


async def resolve(
    conn: AsyncConnection,
    actor: Principal,
    namespace: str,
    name: str,
    need: Level = Level.READ,
    *,
    facts: Facts | None = None,
) -> tuple[RepositoryRecord, Level]:
    """The repository and the actor's level on it, if at least ``need``.

    Raises ``NotFound("repository")`` if it does not exist or the actor may not see it (a private repository's
    existence is never revealed), ``Denied("repository")`` if the actor sees it but holds less than ``need``.
    """
    record = await find_record(conn, namespace, name)
    if record is None:
        raise not_found(namespace, name)
    # The hidden answer must be the missing one, detail included.
    detail = {"namespace": namespace[:255], "name": name[:255]}
    access = await require(
        conn, actor, Permission.on_repository(need), RepositoryResource(record.name, detail), facts=facts
    )
    return record, access.level
