"""The pull policies at the /v2 door: the one place that decides whether a manifest's bytes may go out. Every
route that hands them out — ``/manifests/`` and ``/blobs/<manifest digest>`` (manifests are served as blobs too,
as in distribution) — calls ``check_policies``, which asks the trust policy (``http/oci/trust.py``:
``dockyard.trust.checker``) and then the vulnerability policy (``dockyard.vulns.gate``) and acts on their answers
the same way: 403 ``DENIED`` naming the policy when one refuses, a ``policy_violation`` event on a GET it warns
about or refuses, and a response header saying what it found."""

from __future__ import annotations

from starlette.requests import Request

from dockyard.core.digest import Digest
from dockyard.errors import NotFound
from dockyard.http.oci.auth import principal
from dockyard.http.oci.base import registry
from dockyard.http.oci.errors import OCIError
from dockyard.http.oci.trust import check_trust
from dockyard.http.oci.trust import manifest_behind_blob as trust_manifest_behind_blob
from dockyard.registry.manifests import StoredManifest
from dockyard.vulns.gate import VulnerabilityGate

VULNERABILITY_HEADER = "X-Dockyard-Vulnerability-Policy"


def _gate(request: Request) -> VulnerabilityGate | None:
    gate: VulnerabilityGate | None = getattr(request.app.state, "vulns", None)
    return gate


async def check_policies(
    request: Request, name: str, reference: str, manifest: StoredManifest, headers: dict[str, str]
) -> None:
    """Raise 403 ``DENIED`` when the trust or the vulnerability policy refuses ``manifest``; record a violation on
    a GET one warns about or refuses; add each policy's header to ``headers``."""
    await check_trust(request, name, reference, manifest, headers)
    gate = _gate(request)
    if gate is None:
        return
    decision = await gate.decide(name, manifest.digest, manifest.media_type, manifest.content)
    if decision.violation and request.method == "GET":
        await gate.record_violation(name, reference, manifest.digest, principal(request).audit_name, decision)
    if decision.refuse:
        raise OCIError(
            "DENIED", decision.message, {"policy": "vulnerability", "mode": "enforce", "digest": manifest.digest}
        )
    header = decision.header
    if header is not None:
        headers[VULNERABILITY_HEADER] = header.encode("ascii", "replace").decode("ascii")[:512]


async def manifest_behind_blob(request: Request, name: str, digest: Digest) -> StoredManifest | None:
    """The manifest of ``name`` with this digest when a trust or vulnerability policy applies to ``name``; None
    when none does or there is no such manifest."""
    found = await trust_manifest_behind_blob(request, name, digest)
    if found is not None:
        return found
    gate = _gate(request)
    if gate is None or (await gate.policy(name)).mode == "off":
        return None
    try:
        return await registry(request).manifests.get(name, str(digest))
    except NotFound:
        return None
