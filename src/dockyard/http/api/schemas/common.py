"""What every Hub API schema module shares: RFC 3339 timestamps, the one copy of the text patterns of names and
free text, the problem+json error responses declared in the OpenAPI document, and Docker Hub's list envelope
(``Paginated[T]``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from dockyard.core.paging import Page, PageRequest

T = TypeVar("T")


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

# Names and free text in paths, queries and bodies carry no control characters (PostgreSQL refuses NUL; none
# belongs in a name); long texts in bodies (descriptions) may hold line breaks and tabs but no NUL.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
PRINTABLE_OR_EMPTY = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"
MAX_NAME_LENGTH = 255

NamespaceName = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE, description="user or organization name")
]
NsPath = Annotated[
    str, Path(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE, description="user or organization name")
]
RepoPath = Annotated[
    str,
    Path(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE, description="repository name in the namespace"),
]


class Problem(BaseModel):
    """An RFC 9457 problem: every error of the Hub API."""

    type: str = Field(description="``urn:dockyard:error:<subject>`` for domain errors, else ``about:blank``")
    title: str
    status: int
    detail: str
    subject: str | None = Field(default=None, description="what was wrong (repository, tag, webhook, …)")
    errors: Any = Field(default=None, description="details: validation errors or the offending values")
    request_id: str | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()
_DESCRIPTIONS = {
    400: "the request is not valid (a name's grammar, a reserved name, an unknown value)",
    401: "authentication required, or the credentials are wrong or no longer valid",
    403: "the caller may not do this",
    404: "no such resource, or one the caller may not see",
    409: "conflicts with the current state (a name taken, already a member, the last owner or administrator)",
    413: "the request body is too large",
    422: "the request does not match the schema",
    429: "too many requests (failed sign-ins)",
}


def error_responses(
    *codes: int, ok: tuple[int, str] | None = None, validated: bool = True
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problem+json errors an operation returns, and ``ok``: a success status
    without a body, with its description. ``validated``: the operation takes parameters or a body, so it may
    also answer 422 (declaring it replaces FastAPI's default, which is not problem+json)."""
    responses: dict[int | str, dict[str, Any]] = {}
    if ok is not None:
        responses[ok[0]] = {"description": ok[1]}
    for code in sorted({*codes, *([422] if validated else [])}):
        problem = {"application/problem+json": {"schema": _PROBLEM_SCHEMA}}
        responses[code] = {"description": _DESCRIPTIONS[code], "content": problem}
    return responses


NO_CONTENT: dict[int | str, dict[str, Any]] = {204: {"description": "done (no body)"}}


class Paginated(BaseModel, Generic[T]):
    """Docker Hub's list envelope (``page`` is 1-based; ``next`` / ``previous`` are absolute links)."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


def page_of(items: list[T], page: PageRequest) -> Page[T]:
    """One page of a list the service returns whole."""
    return Page(items=items[page.offset : page.offset + page.page_size], count=len(items), request=page)
