"""Image-signing trust in the Hub API: a namespace's trusted public keys, its trusted keyless identities and its
trust policies (the namespace's
default and per-repository overrides: ``off``, ``warn`` or ``enforce`` at pull time). Namespace owners only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Request, Response
from pydantic import BaseModel, Field

from dockyard.http.api.deps import Services, SignedIn
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import (
    NO_CONTENT,
    PRINTABLE,
    PRINTABLE_OR_EMPTY,
    NsPath,
    RepoPath,
    Timestamp,
    error_responses,
)
from dockyard.http.credentials import client_ip
from dockyard.repos.access import full_name

router = api_router(prefix="/api/v2", tags=["signing"])

KeyIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]
IdentityIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^oidc-[0-9a-f]+$")]


class TrustedKeyOut(BaseModel):
    key_id: str = Field(description="SHA-256 (hex) of the key's DER SubjectPublicKeyInfo")
    name: str
    algorithm: str
    public_key: str = Field(description="PEM")
    created_by: str
    created_at: Timestamp


class TrustedKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=PRINTABLE)
    public_key: str = Field(
        min_length=1, max_length=16_384, description="PEM public key: ECDSA P-256/P-384, Ed25519 or RSA ≥ 2048"
    )


class KeyList(BaseModel):
    count: int
    results: list[TrustedKeyOut]


class TrustedIdentityOut(BaseModel):
    identity_id: str = Field(description="oidc- and 16 hex digits; shown as key_id in signature results")
    name: str
    issuer: str = Field(description="the OIDC issuer the signing certificate must name, exactly")
    subject: str = Field(description="a regular expression the certificate's subject (e-mail, URI) fully matches")
    created_by: str
    created_at: Timestamp


class TrustedIdentityIn(BaseModel):
    issuer: str = Field(min_length=8, max_length=512, examples=["https://token.actions.githubusercontent.com"])
    subject: str = Field(
        min_length=1, max_length=512, examples=[r"https://github\.com/acme/.+/\.github/workflows/release\.yml@.*"]
    )
    name: str = Field(default="", max_length=100, pattern=PRINTABLE_OR_EMPTY)


class IdentityList(BaseModel):
    count: int
    results: list[TrustedIdentityOut]


class PolicyOut(BaseModel):
    namespace: str
    repository: str | None
    mode: Literal["off", "warn", "enforce"]
    exempt: list[str] = Field(description='globs on "repo" or "repo:tag" that the policy does not apply to')
    inherited: bool = Field(description="true: no policy of its own, the namespace's default applies")
    updated_by: str
    updated_at: Timestamp | None


class PolicyIn(BaseModel):
    mode: Literal["off", "warn", "enforce"]
    exempt: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(default_factory=list, max_length=100)


@router.get("/namespaces/{ns}/trusted-keys", response_model=KeyList, responses=error_responses(401, 404))
async def list_keys(ns: NsPath, who: SignedIn, svc: Services) -> KeyList:
    """The public keys whose signatures this namespace trusts."""
    keys = await svc.trust.list_keys(who, ns)
    return KeyList(count=len(keys), results=[TrustedKeyOut.model_validate(k, from_attributes=True) for k in keys])


@router.post(
    "/namespaces/{ns}/trusted-keys",
    status_code=201,
    response_model=TrustedKeyOut,
    responses=error_responses(400, 401, 404, 409),
)
async def add_key(ns: NsPath, body: TrustedKeyIn, request: Request, who: SignedIn, svc: Services) -> TrustedKeyOut:
    """Trust a public key (cosign's ``cosign.pub``, or any PEM key of a supported type)."""
    view = await svc.trust.add_key(who, ns, name=body.name, public_key=body.public_key, source_ip=client_ip(request))
    svc.checker.forget(ns)
    return TrustedKeyOut.model_validate(view, from_attributes=True)


@router.delete(
    "/namespaces/{ns}/trusted-keys/{key_id}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 404)},
)
async def remove_key(ns: NsPath, key_id: KeyIdPath, request: Request, who: SignedIn, svc: Services) -> Response:
    """Stop trusting a key: images signed only by it are unverified (and, under ``enforce``, unpullable) within
    seconds."""
    await svc.trust.remove_key(who, ns, key_id, source_ip=client_ip(request))
    svc.checker.forget(ns)
    return Response(status_code=204)


@router.get("/namespaces/{ns}/trusted-identities", response_model=IdentityList, responses=error_responses(401, 404))
async def list_identities(ns: NsPath, who: SignedIn, svc: Services) -> IdentityList:
    """The keyless signers (OIDC issuer and subject pattern) whose signatures this namespace trusts."""
    identities = await svc.trust.list_identities(who, ns)
    return IdentityList(
        count=len(identities), results=[TrustedIdentityOut.model_validate(i, from_attributes=True) for i in identities]
    )


@router.post(
    "/namespaces/{ns}/trusted-identities",
    status_code=201,
    response_model=TrustedIdentityOut,
    responses=error_responses(400, 401, 404, 409),
)
async def add_identity(
    ns: NsPath, body: TrustedIdentityIn, request: Request, who: SignedIn, svc: Services
) -> TrustedIdentityOut:
    """Trust keyless signatures (Sigstore bundles with a certificate from the server's trusted root) whose
    certificate names ``issuer`` and a subject that ``subject`` matches in full, as cosign's
    ``--certificate-oidc-issuer`` and ``--certificate-identity-regexp``."""
    view = await svc.trust.add_identity(
        who, ns, issuer=body.issuer, subject=body.subject, name=body.name, source_ip=client_ip(request)
    )
    svc.checker.forget(ns)
    return TrustedIdentityOut.model_validate(view, from_attributes=True)


@router.delete(
    "/namespaces/{ns}/trusted-identities/{identity_id}",
    status_code=204,
    response_class=Response,
    responses={**NO_CONTENT, **error_responses(401, 404)},
)
async def remove_identity(
    ns: NsPath, identity_id: IdentityIdPath, request: Request, who: SignedIn, svc: Services
) -> Response:
    """Stop trusting a keyless identity."""
    await svc.trust.remove_identity(who, ns, identity_id, source_ip=client_ip(request))
    svc.checker.forget(ns)
    return Response(status_code=204)


@router.get("/namespaces/{ns}/trust-policy", response_model=PolicyOut, responses=error_responses(401, 404))
async def get_namespace_policy(ns: NsPath, who: SignedIn, svc: Services) -> PolicyOut:
    return PolicyOut.model_validate(await svc.trust.get_policy(who, ns, None), from_attributes=True)


@router.put("/namespaces/{ns}/trust-policy", response_model=PolicyOut, responses=error_responses(400, 401, 404))
async def set_namespace_policy(ns: NsPath, body: PolicyIn, request: Request, who: SignedIn, svc: Services) -> PolicyOut:
    """The namespace's default policy; repositories without their own follow it."""
    view = await svc.trust.set_policy(who, ns, None, mode=body.mode, exempt=body.exempt, source_ip=client_ip(request))
    svc.checker.forget(ns)
    return PolicyOut.model_validate(view, from_attributes=True)


@router.get(
    "/namespaces/{ns}/repositories/{repo}/trust-policy", response_model=PolicyOut, responses=error_responses(401, 404)
)
async def get_repository_policy(ns: NsPath, repo: RepoPath, who: SignedIn, svc: Services) -> PolicyOut:
    return PolicyOut.model_validate(await svc.trust.get_policy(who, ns, full_name(ns, repo)), from_attributes=True)


@router.put(
    "/namespaces/{ns}/repositories/{repo}/trust-policy",
    response_model=PolicyOut,
    responses=error_responses(400, 401, 404),
)
async def set_repository_policy(
    ns: NsPath, repo: RepoPath, body: PolicyIn, request: Request, who: SignedIn, svc: Services
) -> PolicyOut:
    """A repository's own policy, overriding the namespace's default."""
    view = await svc.trust.set_policy(
        who, ns, full_name(ns, repo), mode=body.mode, exempt=body.exempt, source_ip=client_ip(request)
    )
    svc.checker.forget(ns)
    return PolicyOut.model_validate(view, from_attributes=True)


class ManagedKeyOut(BaseModel):
    namespace: str
    key_id: str
    public_key: str = Field(description="PEM; the private half stays on the server, sealed with its secret")
    created_by: str
    created_at: Timestamp


@router.get("/namespaces/{ns}/signing-key", response_model=ManagedKeyOut, responses=error_responses(401, 404))
async def get_managed_key(ns: NsPath, who: SignedIn, svc: Services) -> ManagedKeyOut:
    """The namespace's Dockyard-managed signing key (its public half), which server-side signing uses."""
    view = await svc.trust.managed_key(who, ns)
    return ManagedKeyOut.model_validate(view, from_attributes=True)


@router.post(
    "/namespaces/{ns}/signing-key",
    status_code=201,
    response_model=ManagedKeyOut,
    responses=error_responses(400, 401, 404, validated=False),
)
async def create_managed_key(ns: NsPath, request: Request, who: SignedIn, svc: Services) -> ManagedKeyOut:
    """Generate (or replace) the managed signing key; its public half becomes a trusted key of the namespace."""
    view = await svc.trust.create_managed_key(who, ns, source_ip=client_ip(request))
    svc.checker.forget(ns)
    return ManagedKeyOut.model_validate(view, from_attributes=True)
