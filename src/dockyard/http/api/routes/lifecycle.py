"""Quotas and retention in the Hub API. Quotas in Harbor's shape (``hard`` and ``used`` per resource, -1 for
unlimited): a namespace's members read ``/namespaces/{ns}/quota``, site administrators set it and list every
namespace's usage (``/quotas``). Retention policies of a namespace (owners) or a repository (its admins), runs on
demand (``dry_run`` only reports) and their history (``docs/lifecycle.md``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Request, Response
from pydantic import BaseModel, Field

from dockyard.http.api.deps import Services, SignedIn
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import NO_CONTENT, NsPath, RepoPath, Timestamp, error_responses
from dockyard.http.credentials import client_ip
from dockyard.registry.quotas import Usage
from dockyard.repos.quotas import UNSET
from dockyard.repos.retention import PolicyView, RunView
from dockyard.repos.retention_rules import TEMPLATES

router = api_router(prefix="/api/v2", tags=["lifecycle"])

UNLIMITED = -1


class QuotaResources(BaseModel):
    storage: int = Field(description="bytes; in hard: -1 is unlimited")
    repositories: int = Field(description="in hard: -1 is unlimited")


class QuotaOut(BaseModel):
    namespace: str
    hard: QuotaResources
    used: QuotaResources
    soft_percent: int = Field(description="a quota_warning event fires once when storage crosses this % of hard")


class QuotaList(BaseModel):
    count: int
    results: list[QuotaOut]


class HardIn(BaseModel):
    storage: int | None = Field(default=None, ge=-1, description="bytes; -1: unlimited; absent: unchanged")
    repositories: int | None = Field(default=None, ge=-1, description="-1: unlimited; absent: unchanged")


class QuotaIn(BaseModel):
    hard: HardIn = Field(default_factory=HardIn)
    soft_percent: int | None = Field(default=None, ge=1, le=100)


def _quota(usage: Usage) -> QuotaOut:
    return QuotaOut(
        namespace=usage.namespace,
        hard=QuotaResources(
            storage=UNLIMITED if usage.storage_limit is None else usage.storage_limit,
            repositories=UNLIMITED if usage.repository_limit is None else usage.repository_limit,
        ),
        used=QuotaResources(storage=usage.storage_bytes, repositories=usage.repository_count),
        soft_percent=usage.soft_percent,
    )


def _limit(value: int | None) -> Any:
    if value is None:
        return UNSET
    return None if value == UNLIMITED else value


@router.get("/namespaces/{ns}/quota", response_model=QuotaOut, responses=error_responses(401, 403, 404))
async def get_quota(ns: NsPath, who: SignedIn, svc: Services) -> QuotaOut:
    """The namespace's usage and limits (its members)."""
    return _quota(await svc.quotas.show(who, ns))


@router.put("/namespaces/{ns}/quota", response_model=QuotaOut, responses=error_responses(400, 401, 403, 404))
async def set_quota(ns: NsPath, body: QuotaIn, request: Request, who: SignedIn, svc: Services) -> QuotaOut:
    """Set the namespace's hard limits and soft threshold (site administrators)."""
    usage = await svc.quotas.set(
        who,
        ns,
        storage_limit=_limit(body.hard.storage),
        repository_limit=_limit(body.hard.repositories),
        soft_percent=body.soft_percent,
        source_ip=client_ip(request),
    )
    return _quota(usage)


@router.get("/quotas", response_model=QuotaList, responses=error_responses(401, 403))
async def list_quotas(who: SignedIn, svc: Services) -> QuotaList:
    """Every namespace's usage and limits (site administrators)."""
    found = [_quota(usage) for usage in await svc.quotas.list_all(who)]
    return QuotaList(count=len(found), results=found)


Template = Literal["latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull", "always"]
assert set(TEMPLATES) == {"latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull", "always"}


class RuleModel(BaseModel):
    pattern: str = Field(default="*", min_length=1, max_length=255, description="glob on the tag name")
    template: Template
    value: int = Field(default=0, ge=0, le=100_000, description="N tags or D days; unused by always")


class RetentionIn(BaseModel):
    rules: list[RuleModel] = Field(default_factory=list, max_length=15)
    keep_signed: bool = False
    untagged_days: int | None = Field(default=None, ge=0, le=36_500)
    scheduled: bool = True


class RetentionOut(BaseModel):
    namespace: str
    repository: str | None
    rules: list[RuleModel]
    keep_signed: bool
    untagged_days: int | None
    scheduled: bool
    inherited: bool = Field(description="true: the repository has no policy of its own, the namespace's applies")
    updated_by: str | None
    updated_at: Timestamp | None


class DeletedTag(BaseModel):
    tag: str
    digest: str


class RunOut(BaseModel):
    id: int
    namespace: str
    repository: str
    dry_run: bool
    trigger: str
    actor: str | None
    started_at: datetime
    finished_at: datetime | None
    tags_deleted: int = Field(description="in a dry run: the tags it would delete")
    manifests_deleted: int
    bytes_freed: int = Field(description="blobs only the removed images used here; reclaimed by garbage collection")
    tags: list[DeletedTag]
    manifests: list[str]


class RunIn(BaseModel):
    dry_run: bool = False


class RunList(BaseModel):
    count: int
    results: list[RunOut]


def _policy(view: PolicyView) -> RetentionOut:
    return RetentionOut(
        namespace=view.namespace,
        repository=view.repository,
        rules=[RuleModel.model_validate(rule.as_dict()) for rule in view.rules],
        keep_signed=view.keep_signed,
        untagged_days=view.untagged_days,
        scheduled=view.scheduled,
        inherited=view.inherited,
        updated_by=view.updated_by,
        updated_at=view.updated_at,
    )


def _run(view: RunView) -> RunOut:
    return RunOut.model_validate(
        {**{k: getattr(view, k) for k in RunOut.model_fields if k != "tags"}, "tags": view.tags}
    )


async def _set(svc: Any, who: Any, ns: str, repo: str | None, body: RetentionIn, request: Request) -> RetentionOut:
    view = await svc.retention.set_policy(
        who,
        ns,
        repo,
        rules=[rule.model_dump() for rule in body.rules],
        keep_signed=body.keep_signed,
        untagged_days=body.untagged_days,
        scheduled=body.scheduled,
        source_ip=client_ip(request),
    )
    return _policy(view)


@router.get("/namespaces/{ns}/retention", response_model=RetentionOut, responses=error_responses(401, 403, 404))
async def get_namespace_retention(ns: NsPath, who: SignedIn, svc: Services) -> RetentionOut:
    """The namespace's policy: its repositories without one of their own follow it (owners)."""
    return _policy(await svc.retention.get_policy(who, ns, None))


@router.put("/namespaces/{ns}/retention", response_model=RetentionOut, responses=error_responses(400, 401, 403, 404))
async def set_namespace_retention(
    ns: NsPath, body: RetentionIn, request: Request, who: SignedIn, svc: Services
) -> RetentionOut:
    return await _set(svc, who, ns, None, body, request)


@router.delete(
    "/namespaces/{ns}/retention", status_code=204, responses={**NO_CONTENT, **error_responses(401, 403, 404)}
)
async def delete_namespace_retention(ns: NsPath, who: SignedIn, svc: Services) -> Response:
    await svc.retention.delete_policy(who, ns, None)
    return Response(status_code=204)


_REPO = "/namespaces/{ns}/repositories/{repo}/retention"


@router.get(_REPO, response_model=RetentionOut, responses=error_responses(401, 403, 404))
async def get_repository_retention(ns: NsPath, repo: RepoPath, who: SignedIn, svc: Services) -> RetentionOut:
    """The repository's effective policy (``inherited``: its namespace's); repository admins."""
    return _policy(await svc.retention.get_policy(who, ns, repo))


@router.put(_REPO, response_model=RetentionOut, responses=error_responses(400, 401, 403, 404))
async def set_repository_retention(
    ns: NsPath, repo: RepoPath, body: RetentionIn, request: Request, who: SignedIn, svc: Services
) -> RetentionOut:
    return await _set(svc, who, ns, repo, body, request)


@router.delete(_REPO, status_code=204, responses={**NO_CONTENT, **error_responses(401, 403, 404)})
async def delete_repository_retention(ns: NsPath, repo: RepoPath, who: SignedIn, svc: Services) -> Response:
    await svc.retention.delete_policy(who, ns, repo)
    return Response(status_code=204)


@router.post(_REPO + "/runs", response_model=RunOut, responses=error_responses(400, 401, 403, 404))
async def run_retention(ns: NsPath, repo: RepoPath, body: RunIn, who: SignedIn, svc: Services) -> RunOut:
    """Run the effective policy now; ``dry_run`` lists what it would delete and deletes nothing."""
    return _run(await svc.retention.run(who, ns, repo, dry_run=body.dry_run))


@router.get(_REPO + "/runs", response_model=RunList, responses=error_responses(401, 403, 404))
async def list_retention_runs(
    ns: NsPath,
    repo: RepoPath,
    who: SignedIn,
    svc: Services,
    page_size: Annotated[int, Query(ge=1, le=100)] = 25,
) -> RunList:
    """The repository's runs, newest first."""
    runs = [_run(view) for view in await svc.retention.history(who, ns, repo, page_size)]
    return RunList(count=len(runs), results=runs)
