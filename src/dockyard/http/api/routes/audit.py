"""The audit log of a namespace: ``GET /api/v2/auditlogs/{account}`` (newest first, filtered by action, target,
actor and time; Docker Hub's ``logs`` list with the usual ``count``/``next``/``previous``) and
``GET /api/v2/auditlogs/{account}/actions`` (the action names, grouped as Docker Hub groups them).

Only the namespace's owners (the user, organization owners, administrators) may read either: members get 403;
anyone else 404, as for a namespace that does not exist. Entries carry ``source_ip`` besides Docker Hub's fields.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field, field_validator

from dockyard.core.paging import PageRequest
from dockyard.errors import Invalid
from dockyard.events.audit import ACTION_DESCRIPTIONS
from dockyard.http.api.deps import Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import PRINTABLE, Timestamp, error_responses

router = api_router(prefix="/api/v2", tags=["audit"])

Account = Annotated[
    str, Path(min_length=1, max_length=255, pattern=PRINTABLE, description="the namespace: a user or organization")
]

# Action name prefix → (group, group label). Unknown prefixes fall into "other".
_GROUPS = {
    "repo": ("repo", "Repository"),
    "org": ("org", "Organization"),
    "team": ("org", "Organization"),
    "robot": ("org", "Organization"),
    "account": ("account", "Account"),
    "login": ("account", "Account"),
    "access_token": ("account", "Account"),
}
_OTHER = ("other", "Other")


class AuditLogModel(BaseModel):
    account: str = Field(description="the namespace")
    action: str = Field(description="e.g. ``repo.tag.push``")
    name: str = Field(description="the target: ``ns/repo``, ``ns/repo:tag``, a token label, …")
    actor: str
    data: dict[str, str] = Field(description="Docker Hub's string map: a value that is not a string is its JSON text")
    timestamp: Timestamp
    action_description: str
    source_ip: str

    @field_validator("data", mode="before")
    @classmethod
    def _strings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {
            str(key): value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
            for key, value in data.items()
        }


class AuditLogPage(BaseModel):
    count: int
    next: str | None
    previous: str | None
    logs: list[AuditLogModel]


class AuditAction(BaseModel):
    name: str
    description: str
    label: str


class AuditActionGroup(BaseModel):
    actions: list[AuditAction]
    label: str


class AuditActions(BaseModel):
    actions: dict[str, AuditActionGroup]


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise Invalid("request", f"{field} is out of range", {"field": field}) from None


@router.get("/auditlogs/{account}", response_model=AuditLogPage, responses=error_responses(400, 401, 403, 404))
async def list_audit_logs(
    request: Request,
    svc: Services,
    who: SignedIn,
    account: Account,
    paging: Paging,
    action: Annotated[str | None, Query(max_length=64, pattern=PRINTABLE, description="only this action")] = None,
    name: Annotated[
        str | None,
        Query(
            max_length=512, pattern=PRINTABLE, description="only entries about this target (a repository: its tags too)"
        ),
    ] = None,
    actor: Annotated[str | None, Query(max_length=255, pattern=PRINTABLE, description="only this actor")] = None,
    from_: Annotated[datetime | None, Query(alias="from", description="from this time (inclusive)")] = None,
    to: Annotated[datetime | None, Query(description="until this time (exclusive)")] = None,
) -> AuditLogPage:
    """The namespace's audit log, newest first."""
    page = await svc.audit.list(
        who,
        account,
        action=action or None,
        name=name or None,
        actor_name=actor or None,
        since=_utc(from_, "from"),
        until=_utc(to, "to"),
        page=paging,
    )
    envelope = paginated(request, page, [])
    return AuditLogPage(
        count=envelope["count"],
        next=envelope["next"],
        previous=envelope["previous"],
        logs=[AuditLogModel.model_validate(entry, from_attributes=True) for entry in page.items],
    )


def _label(description: str) -> str:
    return description[:1].upper() + description[1:]


def action_groups() -> AuditActions:
    groups: dict[str, AuditActionGroup] = {}
    for name, description in ACTION_DESCRIPTIONS.items():
        key, label = _GROUPS.get(name.split(".", 1)[0], _OTHER)
        group = groups.setdefault(key, AuditActionGroup(actions=[], label=label))
        group.actions.append(AuditAction(name=name, description=description, label=_label(description)))
    return AuditActions(actions=groups)


@router.get("/auditlogs/{account}/actions", response_model=AuditActions, responses=error_responses(401, 403, 404))
async def list_audit_actions(svc: Services, who: SignedIn, account: Account) -> AuditActions:
    """The action names the audit log records, grouped (readable by the same callers as the log)."""
    await svc.audit.list(who, account, page=PageRequest(1, 1))  # the same access check as the log
    return action_groups()
