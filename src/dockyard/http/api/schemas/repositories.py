"""The repository shapes of Docker Hub (the list entry and the detail) that the repository, star and search routes
return, built from the ``dockyard.repos.snapshots`` dataclasses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dockyard.http.api.schemas.common import Paginated, Timestamp
from dockyard.repos.snapshots import RepositorySummary, RepositoryView


class Category(BaseModel):
    name: str
    slug: str


class RepositoryPermissionsModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    read: bool
    write: bool
    admin: bool


class ImmutableTagsSettingsModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    enabled: bool
    rules: list[str]


class RepositorySummaryModel(BaseModel):
    """A repository in a list (``GET /api/v2/namespaces/{ns}/repositories``), read from a ``RepositorySummary``
    with ``model_validate``."""

    model_config = ConfigDict(from_attributes=True)

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

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, value: object) -> object:
        """The service names its categories; the Hub shape gives each a name and a slug."""
        if isinstance(value, (list, tuple)):
            return [{"name": item, "slug": item} if isinstance(item, str) else item for item in value]
        return value


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


def repository_summary(view: RepositorySummary) -> RepositorySummaryModel:
    return RepositorySummaryModel.model_validate(view)


def repository_detail(view: RepositoryView) -> RepositoryModel:
    return RepositoryModel.model_validate(view)


RepositoryPage = Paginated[RepositorySummaryModel]
