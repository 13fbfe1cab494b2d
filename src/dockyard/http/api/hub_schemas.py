"""What the hub routes (repositories, tags, stars, audit, search) share: RFC 3339 timestamps, the declared
problem+json error responses, and the repository shapes of Docker Hub (the list entry and the detail), built
from the ``dockyard.hub.views`` dataclasses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from dockyard.hub.views import RepositorySummary, RepositoryView


def rfc3339(value: datetime) -> str:
    """``2024-05-21T09:47:21.066613Z``, as Docker Hub writes times (naive values are taken as UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# A datetime in Python, an RFC 3339 string with ``Z`` on the wire.
Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]

# Names and free text in paths and queries carry no control characters (PostgreSQL refuses NUL; none belongs in
# a name); long texts in bodies (descriptions) may hold line breaks and tabs but no NUL.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
PRINTABLE_OR_EMPTY = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"

NamespaceName = Annotated[
    str, Field(min_length=1, max_length=255, pattern=PRINTABLE, description="user or organization name")
]
NsPath = Annotated[str, Path(min_length=1, max_length=255, pattern=PRINTABLE, description="user or organization name")]
RepoPath = Annotated[
    str, Path(min_length=1, max_length=255, pattern=PRINTABLE, description="repository name in the namespace")
]


class Problem(BaseModel):
    """An RFC 9457 problem: every error of the Hub API."""

    type: str = Field(description="``urn:dockyard:error:<subject>`` for domain errors, else ``about:blank``")
    title: str
    status: int
    detail: str
    subject: str | None = Field(default=None, description="what was wrong (repository, tag, request, …)")
    errors: Any = Field(default=None, description="details: validation errors or the offending values")
    request_id: str | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()
_DESCRIPTIONS = {
    400: "the request is not valid",
    401: "authentication required, or the credentials are wrong",
    403: "the caller may not do this",
    404: "not found, or not visible to the caller",
    409: "conflicts with the current state",
    422: "the request does not match the schema",
    429: "too many requests",
}


def error_responses(*codes: int, ok: tuple[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for problem+json errors with these statuses (422 for request validation always),
    and ``ok``: a success status without a body, with its description."""
    responses: dict[int | str, dict[str, Any]] = {}
    if ok is not None:
        responses[ok[0]] = {"description": ok[1]}
    for code in sorted({*codes, 422}):
        problem = {"application/problem+json": {"schema": _PROBLEM_SCHEMA}}
        responses[code] = {"description": _DESCRIPTIONS[code], "content": problem}
    return responses


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


class RepositoryPage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    results: list[RepositorySummaryModel]


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
