"""Vulnerability scanning in the Hub API (``dockyard.vulns``, docs/scanning.md).

- ``GET /api/v2/repositories/{ns}/{repo}/tags/{tag}/vulnerabilities``: the report of the tag's image (an index's
  platform image: ``platform``), authorized as a pull (a repository the caller may not pull is a 404).
- A namespace's vulnerability policy (default and per repository), allowlist and OpenVEX documents: namespace
  owners only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel, Field

from dockyard.http.api.deps import Caller, Services, SignedIn
from dockyard.http.api.routes.files import PlatformParam, TagName
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import NO_CONTENT, PRINTABLE, NsPath, RepoPath, Timestamp, error_responses
from dockyard.http.credentials import client_ip
from dockyard.repos.access import full_name
from dockyard.vulns.reports import Report

router = api_router(prefix="/api/v2", tags=["vulnerabilities"])

Severity = Literal["critical", "high", "medium", "low", "unknown"]
VulnId = Annotated[str, Path(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")]


class SuppressionOut(BaseModel):
    kind: Literal["vex", "allowlist"]
    reason: str


class FindingOut(BaseModel):
    id: str = Field(description="the advisory's id (OSV, GHSA, DSA, CVE…)")
    aliases: list[str]
    summary: str
    package: str
    ecosystem: str = Field(description="as OSV writes it, with the distro release: Debian:12, Alpine:v3.19, PyPI")
    installed_version: str
    fixed_version: str | None
    severity: Severity
    score: float | None = Field(description="the highest CVSS base score of the advisory")
    purl: str
    layer: str = Field(description="digest of the layer that brought the package")
    suppressed: SuppressionOut | None = Field(description="set when VEX or the allowlist suppresses the finding")


class ReportOut(BaseModel):
    repository: str
    reference: str
    digest: str = Field(description="the image (platform) manifest's digest")
    platform: str
    scanned: bool = Field(description="false: no inventory of the image yet, or it cannot be scanned; no findings")
    error: str | None = Field(
        default=None, description="why the image cannot be scanned (its inventory failed: an unreadable layer…)"
    )
    scanned_at: Timestamp | None
    packages: int
    summary: dict[str, int] = Field(description="unsuppressed findings per severity")
    suppressed: int
    findings: list[FindingOut]


def _report(report: Report) -> ReportOut:
    return ReportOut(
        repository=report.repository,
        reference=report.reference,
        digest=report.digest,
        platform=report.platform,
        scanned=report.scanned,
        error=report.error,
        scanned_at=report.scanned_at,
        packages=report.packages,
        summary=report.summary(),
        suppressed=sum(1 for f in report.findings if f.suppressed is not None),
        findings=[
            FindingOut(
                id=f.id,
                aliases=f.aliases,
                summary=f.summary,
                package=f.package,
                ecosystem=f.ecosystem,
                installed_version=f.installed,
                fixed_version=f.fixed,
                severity=f.severity,
                score=f.score,
                purl=f.purl,
                layer=f.layer,
                suppressed=SuppressionOut(kind=f.suppressed.kind, reason=f.suppressed.reason)
                if f.suppressed is not None
                else None,
            )
            for f in report.findings
        ],
    )


@router.get(
    "/repositories/{ns}/{repo}/tags/{tag}/vulnerabilities",
    response_model=ReportOut,
    responses=error_responses(400, 401, 404),
)
async def tag_vulnerabilities(
    svc: Services, who: Caller, ns: NsPath, repo: RepoPath, tag: TagName, platform: PlatformParam = None
) -> ReportOut:
    """The vulnerability report of the tag's image (scanned first if it never was), VEX and allowlist applied."""
    return _report(await svc.reports.for_tag(who, ns, repo, tag, platform))


class PolicyOut(BaseModel):
    namespace: str
    repository: str | None
    mode: Literal["off", "warn", "enforce"]
    severity: Literal["low", "medium", "high", "critical"] = Field(description="the lowest severity that counts")
    unscanned: Literal["serve", "refuse"] = Field(description="what happens to pulls of images not scanned yet")
    inherited: bool
    updated_by: str
    updated_at: Timestamp | None


class PolicyIn(BaseModel):
    mode: Literal["off", "warn", "enforce"]
    severity: Literal["low", "medium", "high", "critical"] = "high"
    unscanned: Literal["serve", "refuse"] = "serve"


@router.get("/namespaces/{ns}/vulnerability-policy", response_model=PolicyOut, responses=error_responses(401, 404))
async def get_namespace_policy(ns: NsPath, who: SignedIn, svc: Services) -> PolicyOut:
    return PolicyOut.model_validate(await svc.vulns.get_policy(who, ns, None), from_attributes=True)


@router.put("/namespaces/{ns}/vulnerability-policy", response_model=PolicyOut, responses=error_responses(400, 401, 404))
async def set_namespace_policy(ns: NsPath, body: PolicyIn, request: Request, who: SignedIn, svc: Services) -> PolicyOut:
    """The namespace's default vulnerability policy; repositories without their own follow it."""
    view = await svc.vulns.set_policy(
        who, ns, None, mode=body.mode, severity=body.severity, unscanned=body.unscanned, source_ip=client_ip(request)
    )
    svc.gate.forget(ns)
    return PolicyOut.model_validate(view, from_attributes=True)


@router.get(
    "/namespaces/{ns}/repositories/{repo}/vulnerability-policy",
    response_model=PolicyOut,
    responses=error_responses(401, 404),
)
async def get_repository_policy(ns: NsPath, repo: RepoPath, who: SignedIn, svc: Services) -> PolicyOut:
    return PolicyOut.model_validate(await svc.vulns.get_policy(who, ns, full_name(ns, repo)), from_attributes=True)


@router.put(
    "/namespaces/{ns}/repositories/{repo}/vulnerability-policy",
    response_model=PolicyOut,
    responses=error_responses(400, 401, 404),
)
async def set_repository_policy(
    ns: NsPath, repo: RepoPath, body: PolicyIn, request: Request, who: SignedIn, svc: Services
) -> PolicyOut:
    """A repository's own vulnerability policy, overriding the namespace's default."""
    view = await svc.vulns.set_policy(
        who,
        ns,
        full_name(ns, repo),
        mode=body.mode,
        severity=body.severity,
        unscanned=body.unscanned,
        source_ip=client_ip(request),
    )
    svc.gate.forget(ns)
    return PolicyOut.model_validate(view, from_attributes=True)


class AllowlistEntryOut(BaseModel):
    vulnerability: str
    reason: str
    expires_at: Timestamp | None
    expired: bool
    created_by: str
    created_at: Timestamp


class AllowlistEntryIn(BaseModel):
    vulnerability: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:+-]*$")
    reason: str = Field(min_length=1, max_length=1000, pattern=PRINTABLE)
    expires_at: datetime | None = Field(default=None, description="RFC 3339; none: never expires")


class AllowlistOut(BaseModel):
    count: int
    results: list[AllowlistEntryOut]


@router.get(
    "/namespaces/{ns}/vulnerability-allowlist", response_model=AllowlistOut, responses=error_responses(401, 404)
)
async def list_allowlist(ns: NsPath, who: SignedIn, svc: Services) -> AllowlistOut:
    entries = await svc.vulns.list_allowlist(who, ns)
    return AllowlistOut(
        count=len(entries), results=[AllowlistEntryOut.model_validate(e, from_attributes=True) for e in entries]
    )


@router.post(
    "/namespaces/{ns}/vulnerability-allowlist",
    status_code=201,
    response_model=AllowlistEntryOut,
    responses=error_responses(400, 401, 404),
)
async def add_allowlist_entry(
    ns: NsPath, body: AllowlistEntryIn, request: Request, who: SignedIn, svc: Services
) -> AllowlistEntryOut:
    """Allowlist a vulnerability id (or alias) in the namespace, with a reason and an optional expiry."""
    expires = body.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    view = await svc.vulns.allow(
        who, ns, body.vulnerability, reason=body.reason, expires_at=expires, source_ip=client_ip(request)
    )
    svc.gate.forget(ns)
    return AllowlistEntryOut.model_validate(view, from_attributes=True)


@router.delete(
    "/namespaces/{ns}/vulnerability-allowlist/{vulnerability}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 404)},
)
async def remove_allowlist_entry(
    ns: NsPath, vulnerability: VulnId, request: Request, who: SignedIn, svc: Services
) -> Response:
    await svc.vulns.disallow(who, ns, vulnerability, source_ip=client_ip(request))
    svc.gate.forget(ns)
    return Response(status_code=204)


class VexDocumentOut(BaseModel):
    document: str = Field(description="the document's @id")
    statements: int
    created_by: str
    created_at: Timestamp


class VexList(BaseModel):
    count: int
    results: list[VexDocumentOut]


@router.get("/namespaces/{ns}/vex", response_model=VexList, responses=error_responses(401, 404))
async def list_vex(ns: NsPath, who: SignedIn, svc: Services) -> VexList:
    docs = await svc.vulns.list_vex(who, ns)
    return VexList(count=len(docs), results=[VexDocumentOut.model_validate(d, from_attributes=True) for d in docs])


@router.post(
    "/namespaces/{ns}/vex",
    status_code=201,
    response_model=VexDocumentOut,
    responses=error_responses(400, 401, 404, validated=False),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/openvex+json": {"schema": {"type": "object"}}, "application/json": {}},
        }
    },
)
async def add_vex(ns: NsPath, request: Request, who: SignedIn, svc: Services) -> VexDocumentOut:
    """Upload an OpenVEX document (JSON); a document with the same ``@id`` is replaced. ``not_affected`` and
    ``fixed`` statements suppress the findings they name for the products they name (an image digest or
    ``pkg:oci/…@sha256:…``, or a package purl)."""
    view = await svc.vulns.add_vex(who, ns, await request.body(), source_ip=client_ip(request))
    svc.gate.forget(ns)
    return VexDocumentOut.model_validate(view, from_attributes=True)


@router.delete(
    "/namespaces/{ns}/vex",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 404)},
)
async def remove_vex(
    ns: NsPath,
    request: Request,
    who: SignedIn,
    svc: Services,
    document: Annotated[str, Query(min_length=1, max_length=512, pattern=PRINTABLE, description="the @id")],
) -> Response:
    await svc.vulns.remove_vex(who, ns, document, source_ip=client_ip(request))
    svc.gate.forget(ns)
    return Response(status_code=204)
