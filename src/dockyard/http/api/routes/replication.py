"""Replication rules of a namespace, their runs and each run's per-artifact history
(``/api/v2/namespaces/{ns}/replication/…``; the namespace's owners only, ``dockyard.replication.rules``). The
remote's password is write-only."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from dockyard.http.api.deps import Services, SignedIn
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import NO_CONTENT, NsPath, Timestamp, error_responses
from dockyard.http.credentials import client_ip
from dockyard.replication.rules import RuleInput

router = api_router(prefix="/api/v2", tags=["replication"])
RuleName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
RULES = "/namespaces/{ns}/replication/rules"


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    direction: Literal["push", "pull"] = Field(description="push: this namespace → remote; pull: remote → here")
    remote_url: str = Field(min_length=1, max_length=2048, examples=["https://registry.example.com"])
    remote_namespace: str = Field(
        default="",
        max_length=255,
        description="local <ns>/<path> is remote <remote_namespace>/<path> (default: the same name)",
    )
    username: str | None = Field(default=None, min_length=1, max_length=255)
    password: str | None = Field(default=None, min_length=1, max_length=4096, description="stored sealed, never shown")
    repository_filter: str = Field(default="*", min_length=1, max_length=255, description="glob over <path>")
    tag_filter: str = Field(default="*", min_length=1, max_length=255, description="glob over the tag")
    replicate_deletes: bool = False
    trigger: Literal["manual", "event", "schedule"] = Field(
        default="manual", description="event: on pushes and tag deletions (push rules only)"
    )
    schedule_seconds: int | None = Field(default=None, ge=60, le=366 * 86400)
    bandwidth_limit_kib: int | None = Field(default=None, ge=1, description="KiB/s per blob transfer")
    enabled: bool = True


class RuleOut(BaseModel):
    name: str
    direction: str
    remote_url: str
    remote_namespace: str
    username: str | None
    has_password: bool
    repository_filter: str
    tag_filter: str
    replicate_deletes: bool
    trigger: str
    schedule_seconds: int | None
    bandwidth_limit_kib: int | None
    enabled: bool
    created_by: str
    created_at: Timestamp


class RuleList(BaseModel):
    count: int
    results: list[RuleOut]


class ResultOut(BaseModel):
    attempt: int
    source: str
    destination: str
    digest: str | None
    result: Literal["copied", "skipped", "deleted", "failed"]
    reason: str | None
    bytes: int


class RunOut(BaseModel):
    id: int
    rule: str
    trigger: str
    scope: dict[str, Any]
    state: Literal["queued", "running", "retrying", "succeeded", "failed"]
    attempts: int
    copied: int
    skipped: int
    deleted: int
    failed: int
    bytes_copied: int
    error: str | None
    created_by: str
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    results: list[ResultOut] = Field(default_factory=list, description="per artifact, every attempt (detail only)")


class RunList(BaseModel):
    count: int
    results: list[RunOut]


def _rule(view: object) -> RuleOut:
    return RuleOut.model_validate(view, from_attributes=True)


def _run(view: object) -> RunOut:
    return RunOut.model_validate(view, from_attributes=True)


@router.get(RULES, response_model=RuleList, responses=error_responses(401, 403, 404, validated=False))
async def list_rules(ns: NsPath, who: SignedIn, svc: Services) -> RuleList:
    """The namespace's replication rules."""
    views = await svc.replication.list(who, ns)
    return RuleList(count=len(views), results=[_rule(v) for v in views])


@router.post(RULES, status_code=201, response_model=RuleOut, responses=error_responses(400, 401, 403, 404, 409))
async def add_rule(ns: NsPath, body: RuleIn, request: Request, who: SignedIn, svc: Services) -> RuleOut:
    """Add a replication rule to or from another registry."""
    spec = RuleInput(**body.model_dump())
    return _rule(await svc.replication.add(who, ns, spec, source_ip=client_ip(request)))


@router.get(RULES + "/{rule}", response_model=RuleOut, responses=error_responses(401, 403, 404))
async def get_rule(ns: NsPath, rule: RuleName, who: SignedIn, svc: Services) -> RuleOut:
    return _rule(await svc.replication.get(who, ns, rule))


@router.delete(
    RULES + "/{rule}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 403, 404)},
)
async def remove_rule(ns: NsPath, rule: RuleName, request: Request, who: SignedIn, svc: Services) -> Response:
    """Remove the rule and its runs' history."""
    await svc.replication.remove(who, ns, rule, source_ip=client_ip(request))
    return Response(status_code=204)


@router.post(RULES + "/{rule}/runs", status_code=201, response_model=RunOut, responses=error_responses(401, 403, 404))
async def start_run(ns: NsPath, rule: RuleName, request: Request, who: SignedIn, svc: Services) -> RunOut:
    """Run the rule now (a job: poll the run for its state)."""
    return _run(await svc.replication.run(who, ns, rule, source_ip=client_ip(request)))


@router.get(RULES + "/{rule}/runs", response_model=RunList, responses=error_responses(401, 403, 404))
async def list_runs(
    ns: NsPath, rule: RuleName, who: SignedIn, svc: Services, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> RunList:
    """The rule's runs, newest first (without their per-artifact results)."""
    views = await svc.replication.runs(who, ns, rule, limit)
    return RunList(count=len(views), results=[_run(v) for v in views])


@router.get(
    "/namespaces/{ns}/replication/runs/{run_id}", response_model=RunOut, responses=error_responses(401, 403, 404)
)
async def get_run(ns: NsPath, run_id: Annotated[int, Path(ge=1)], who: SignedIn, svc: Services) -> RunOut:
    """One run with the result of every artifact of every attempt."""
    return _run(await svc.replication.run_detail(who, ns, run_id))
