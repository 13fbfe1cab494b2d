"""The trust policy at the /v2 door: every route that hands out a manifest's bytes — ``/manifests/`` and
``/blobs/<manifest digest>`` (manifests are served as blobs too, as in distribution) — asks the same question
of ``dockyard.trust.checker.TrustChecker`` and acts on the answer the same way."""

from __future__ import annotations

from starlette.requests import Request

from dockyard.core.digest import Digest
from dockyard.errors import NotFound
from dockyard.http.oci.auth import principal
from dockyard.http.oci.base import registry
from dockyard.http.oci.errors import OCIError
from dockyard.registry.manifests import StoredManifest
from dockyard.trust.checker import TrustChecker

VERIFIED_HEADER = "Dockyard-Signature-Verified"


def _checker(request: Request) -> TrustChecker | None:
    checker: TrustChecker | None = getattr(request.app.state, "trust", None)  # policy off: a cached no-op
    return checker


async def check_trust(
    request: Request, name: str, reference: str, manifest: StoredManifest, headers: dict[str, str]
) -> None:
    """Raise 403 ``DENIED`` when the policy refuses ``manifest``; record a violation on a GET it warns about or
    refuses; say in ``headers`` whether its signature was verified."""
    checker = _checker(request)
    if checker is None:
        return
    decision = await checker.decide(name, reference, manifest.digest, manifest.media_type, manifest.content)
    if (decision.warn or decision.refuse) and request.method == "GET":
        await checker.record_violation(name, reference, manifest.digest, principal(request).audit_name, decision.mode)
    if decision.refuse:
        raise OCIError("DENIED", decision.message, {"policy": "enforce", "digest": manifest.digest})
    if decision.verified is not None:
        headers[VERIFIED_HEADER] = "true" if decision.verified else "false"


async def manifest_behind_blob(request: Request, name: str, digest: Digest) -> StoredManifest | None:
    """The manifest of ``name`` with this digest when a trust policy applies to ``name`` (its bytes may also
    have been uploaded as an ordinary blob: they are still the manifest); None when none applies or there is no
    such manifest. Costs nothing beyond a cached policy look-up while the policy is off."""
    checker = _checker(request)
    if checker is None or (await checker.policy(name)).mode == "off":
        return None
    try:
        return await registry(request).manifests.get(name, str(digest))
    except NotFound:
        return None
