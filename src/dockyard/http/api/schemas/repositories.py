"""The repository shapes of Docker Hub (the list entry and the detail) that the repository, star and search routes
return, built from the ``dockyard.repos.snapshots`` dataclasses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from dockyard.http.api.schemas.common import Paginated, Timestamp
from dockyard.repos.snapshots import RepositorySummary, RepositoryView


class Category(BaseModel):
    name: str
    slug: str


class RepositoryPermissionsModel(BaseModel):
    read: bool
    write: bool
    admin: bool


class ImmutableTagsSettingsModel(BaseModel):
    enabled: bool
    rules: list[str]


class RepositorySummaryModel(BaseModel):
    """A repository in a list (``GET /api/v2/namespaces/{ns}/repositories``)."""

    name: str = Field(description="the name in the namespace")
    namespace: str
    repository_type: str | None = Field(description="``image``")
    status: int = Field(description="1: active")
    status_description: str
    description: str
    is_private: bool
    star_count: int
    pull_count: int
    last_updated: Timestamp = Field(description="the last push, else the creation")
    last_modified: Timestamp = Field(description="the last change of content or settings")
    date_registered: Timestamp
    affiliation: str = Field(description="the caller's relation to the namespace: owner, member or empty")
    media_types: list[str]
    content_types: list[str] = Field(description="``image``, ``artifact``")
    categories: list[Category]
    storage_size: int = Field(description="bytes of the blobs the repository holds")


class RepositoryModel(RepositorySummaryModel):
    """One repository with the caller-specific details (``GET /api/v2/namespaces/{ns}/repositories/{repo}``)."""

    user: str
    is_automated: bool
    collaborator_count: int
    hub_user: str
    has_starred: bool
    full_description: str
    permissions: RepositoryPermissionsModel
    immutable_tags_settings: ImmutableTagsSettingsModel
    source: str | None


def _summary_fields(view: RepositorySummary) -> dict[str, Any]:
    return {
        "name": view.name,
        "namespace": view.namespace,
        "repository_type": view.repository_type,
        "status": view.status,
        "status_description": view.status_description,
        "description": view.description,
        "is_private": view.is_private,
        "star_count": view.star_count,
        "pull_count": view.pull_count,
        "last_updated": view.last_updated,
        "last_modified": view.last_modified,
        "date_registered": view.date_registered,
        "affiliation": view.affiliation,
        "media_types": list(view.media_types),
        "content_types": list(view.content_types),
        "categories": [Category(name=name, slug=name) for name in view.categories],
        "storage_size": view.storage_size,
    }


def repository_summary(view: RepositorySummary) -> RepositorySummaryModel:
    return RepositorySummaryModel(**_summary_fields(view))


def repository_detail(view: RepositoryView) -> RepositoryModel:
    return RepositoryModel(
        **_summary_fields(view),
        user=view.user,
        is_automated=view.is_automated,
        collaborator_count=view.collaborator_count,
        hub_user=view.hub_user,
        has_starred=view.has_starred,
        full_description=view.full_description,
        permissions=RepositoryPermissionsModel(
            read=view.permissions.read, write=view.permissions.write, admin=view.permissions.admin
        ),
        immutable_tags_settings=ImmutableTagsSettingsModel(
            enabled=view.immutable_tags_settings.enabled, rules=list(view.immutable_tags_settings.rules)
        ),
        source=view.source,
    )


RepositoryPage = Paginated[RepositorySummaryModel]
