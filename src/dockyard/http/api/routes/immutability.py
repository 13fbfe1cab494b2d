"""Tag immutability: Docker Hub's ``PATCH …/repositories/{repo}/immutabletags`` and ``POST …/immutabletags/verify``
(the repository's PATCH also takes ``immutable_tags_settings``), and a namespace's own rules
(``/api/v2/namespaces/{ns}/immutability-rules``, Dockyard's: glob or regex, scoped by a glob on the repository).
"""

from __future__ import annotations

from typing import Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from dockyard.http.api.deps import Services, SignedIn
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import NsPath, RepoPath, error_responses
from dockyard.http.api.schemas.repositories import RepositoryModel, repository_detail
from dockyard.http.credentials import client_ip
from dockyard.repos.immutability import NamespaceRule, NamespaceRules
from dockyard.repos.snapshots import ImmutableTagsSettings

router = api_router(prefix="/api/v2", tags=["immutability"])

RULE = Field(max_length=255, pattern=r"^[^,]+$")


class ImmutableTagsUpdate(BaseModel):
    """Docker Hub's ``update_repository_immutable_tags_request``."""

    model_config = ConfigDict(extra="forbid")

    immutable_tags: bool
    immutable_tags_rules: list[str] = Field(max_length=100, description="RE2 regular expressions, whole-tag match")


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regex: str = Field(min_length=1, max_length=255, pattern=r"^[^,]*$", description="RE2 syntax; no commas")


class VerifyResponse(BaseModel):
    tags: list[str]


class NamespaceRuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    pattern: str = Field(min_length=1, max_length=255, description="matched against the whole tag")
    syntax: Literal["glob", "regex"] = "glob"
    repositories: str = Field(
        default="*", min_length=1, max_length=255, description="glob over the repository's name within the namespace"
    )


class NamespaceRulesModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[NamespaceRuleModel] = Field(max_length=100)


class NamespaceRulesOut(NamespaceRulesModel):
    namespace: str


def _out(view: NamespaceRules) -> NamespaceRulesOut:
    return NamespaceRulesOut(
        namespace=view.namespace, rules=[NamespaceRuleModel.model_validate(rule) for rule in view.rules]
    )


@router.patch(
    "/namespaces/{ns}/repositories/{repo}/immutabletags",
    response_model=RepositoryModel,
    responses=error_responses(400, 401, 403, 404),
)
async def update_immutable_tags(
    body: ImmutableTagsUpdate, request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath
) -> RepositoryModel:
    """Set the repository's immutable tags (admin permission on the repository); answers the repository."""
    settings = ImmutableTagsSettings(body.immutable_tags, tuple(body.immutable_tags_rules))
    await svc.immutability.update(who, ns, repo, settings, source_ip=client_ip(request))
    return repository_detail(await svc.repositories.get(who, ns, repo))


@router.post(
    "/namespaces/{ns}/repositories/{repo}/immutabletags/verify",
    response_model=VerifyResponse,
    responses=error_responses(400, 401, 403, 404),
)
async def verify_immutable_tags(
    body: VerifyRequest, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath
) -> VerifyResponse:
    """The repository's tags the rule would protect (admin permission on the repository)."""
    return VerifyResponse(tags=await svc.immutability.verify(who, ns, repo, body.regex))


@router.get(
    "/namespaces/{ns}/immutability-rules", response_model=NamespaceRulesOut, responses=error_responses(401, 403, 404)
)
async def get_namespace_rules(svc: Services, who: SignedIn, ns: NsPath) -> NamespaceRulesOut:
    """The namespace's immutability rules (its owners)."""
    return _out(await svc.immutability.namespace_rules(who, ns))


@router.put(
    "/namespaces/{ns}/immutability-rules",
    response_model=NamespaceRulesOut,
    responses=error_responses(400, 401, 403, 404),
)
async def set_namespace_rules(
    body: NamespaceRulesModel, request: Request, svc: Services, who: SignedIn, ns: NsPath
) -> NamespaceRulesOut:
    """Replace the namespace's immutability rules (its owners); they apply to every repository the
    ``repositories`` glob matches, with the repositories' own rules."""
    rules = [NamespaceRule(r.pattern, r.syntax, r.repositories) for r in body.rules]
    return _out(await svc.immutability.set_namespace_rules(who, ns, rules, source_ip=client_ip(request)))
