"""All tables, one module per aggregate, sharing one MetaData so relationships never cycle between domains."""

from dockyard.models.base import Base, metadata
from dockyard.models.content import Blob, Manifest, ManifestReference, Repository, RepositoryBlob, Tag
from dockyard.models.events import Event
from dockyard.models.maintenance import MaintenanceLease
from dockyard.models.uploads import Upload

__all__ = [
    "Base",
    "Blob",
    "Event",
    "MaintenanceLease",
    "Manifest",
    "ManifestReference",
    "Repository",
    "RepositoryBlob",
    "Tag",
    "Upload",
    "metadata",
]
