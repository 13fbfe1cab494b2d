"""The vulnerability policy at pull time (Harbor's "prevent vulnerable images from being pulled"): may this
manifest go out, given its namespace's or repository's policy, its findings and the namespace's VEX statements
and allowlist?

Only images are judged: an image manifest by its own findings, an index by its platform images' (attestation
manifests aside). Signatures, SBOMs, attestations and every other artifact always go out. ``enforce`` refuses an
image with an unsuppressed finding at or above the policy's severity; ``warn`` serves it and says so; an image
not scanned yet is served or refused as the policy's ``unscanned`` says. Policies are cached ``CACHE_SECONDS`` per
process (and dropped at once by ``forget`` after a change made here), decisions as long per image and policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from dockyard.core import mediatypes as mt
from dockyard.core.manifest import parse_manifest
from dockyard.core.names import namespace_of
from dockyard.db.engine import Database
from dockyard.errors import DomainError
from dockyard.events.outbox import POLICY_VIOLATED, record_event
from dockyard.models import VulnPolicy
from dockyard.repos.access import IMAGE_CONFIG_TYPES
from dockyard.vulns.manage import load_suppressions
from dockyard.vulns.osv import severity_rank
from dockyard.vulns.reports import ReportedFinding, image_findings
from dockyard.vulns.scanner import FAILED
from dockyard.vulns.vexrefs import ReferrerVex

CACHE_SECONDS = 2.0
_ATTESTATION = "attestation-manifest"


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str
    severity: str
    unscanned: str
    scope: str


@dataclass(frozen=True, slots=True)
class Decision:
    mode: str
    violation: bool
    message: str = ""

    @property
    def refuse(self) -> bool:
        return self.mode == "enforce" and self.violation

    @property
    def warn(self) -> bool:
        return self.mode == "warn" and self.violation

    @property
    def header(self) -> str | None:
        """The ``X-Dockyard-Vulnerability-Policy`` value of a served image (None: no policy applies)."""
        if self.mode == "off":
            return None
        return f"warn; {self.message}" if self.violation else "pass"


OFF = Decision("off", False)


def images_of(media_type: str, content: bytes) -> list[str] | None:
    """The image manifests the policy judges for this manifest (itself, or an index's platform images); None for
    an artifact (a signature, an SBOM, …) or anything unreadable: those are never refused."""
    try:
        parsed = parse_manifest(content, media_type)
    except DomainError:
        return None
    if parsed.is_index:
        children = [
            str(c.digest)
            for c in parsed.children
            if c.media_type in mt.IMAGE_MANIFESTS
            and not (c.annotations and c.annotations.get("vnd.docker.reference.type") == _ATTESTATION)
        ]
        return children or None
    if parsed.config is None or parsed.config.media_type not in IMAGE_CONFIG_TYPES:
        return None
    if parsed.artifact_type is not None and parsed.artifact_type not in IMAGE_CONFIG_TYPES:
        return None
    return []


def _weight(finding: ReportedFinding) -> tuple[int, float]:
    return severity_rank(finding.severity), finding.score or 0.0


class VulnerabilityGate:
    def __init__(self, db: Database, vex: ReferrerVex | None = None) -> None:
        self.db = db
        self.vex = vex  # the OpenVEX documents attached to images (``vexrefs``)
        self._policies: dict[str, tuple[float, dict[str, Policy]]] = {}
        self._decisions: dict[tuple[str, str, Policy], tuple[float, Decision]] = {}
        self._warned: dict[tuple[str, str, str], float] = {}

    async def policy(self, repository: str) -> Policy:
        namespace = namespace_of(repository)
        now = time.monotonic()
        cached = self._policies.get(namespace)
        if cached is None or cached[0] <= now:
            async with self.db.read() as conn:
                rows = (await conn.execute(select(VulnPolicy).where(VulnPolicy.namespace == namespace))).all()
            policies = {r.repository: Policy(r.mode, r.severity, r.unscanned, r.repository or namespace) for r in rows}
            if len(self._policies) > 10_000:
                self._policies.clear()
            self._policies[namespace] = cached = (now + CACHE_SECONDS, policies)
        policies = cached[1]
        return policies.get(repository) or policies.get("") or Policy("off", "high", "serve", repository)

    async def decide(self, repository: str, digest: str, media_type: str, content: bytes) -> Decision:
        policy = await self.policy(repository)
        if policy.mode == "off":
            return OFF
        images = images_of(media_type, content)
        if images is None:
            return Decision(policy.mode, False)  # an artifact: always served
        key = (repository, digest, policy)
        now = time.monotonic()
        memo = self._decisions.get(key)
        if memo is not None and memo[0] > now:
            return memo[1]
        decision = await self._judge(repository, images or [digest], policy)
        if len(self._decisions) > 50_000:
            self._decisions.clear()
        self._decisions[key] = (now + CACHE_SECONDS, decision)
        return decision

    async def _judge(self, repository: str, images: list[str], policy: Policy) -> Decision:
        threshold = severity_rank(policy.severity)
        worst: ReportedFinding | None = None
        unscanned: list[str] = []
        async with self.db.read(consistent=True) as conn:
            suppressions = await load_suppressions(conn, namespace_of(repository))
            for image in images:
                applied = suppressions
                if self.vex is not None:
                    applied = await self.vex.with_referrers(conn, suppressions, repository, image)
                scan, findings = await image_findings(conn, image, applied)
                if scan is None or scan.state == FAILED:  # an image that cannot be scanned is judged as unscanned
                    unscanned.append(image)
                    continue
                counted = [f for f in findings if f.suppressed is None and severity_rank(f.severity) >= threshold]
                for f in counted:
                    if worst is None or _weight(f) > _weight(worst):
                        worst = f
        rule = f"vulnerability policy of {policy.scope}: {policy.mode} at {policy.severity}"
        if worst is not None:
            fixed = f", fixed in {worst.fixed}" if worst.fixed else ""
            alias = f" ({', '.join(worst.aliases[:2])})" if worst.aliases else ""
            return Decision(
                policy.mode,
                True,
                f"{worst.id}{alias}, {worst.severity}, in {worst.package} {worst.installed}{fixed} ({rule})",
            )
        if unscanned and policy.unscanned == "refuse":
            return Decision(policy.mode, True, f"{unscanned[0]} has not been scanned for vulnerabilities ({rule})")
        return Decision(policy.mode, False)

    async def record_violation(
        self, repository: str, reference: str, digest: str, actor: str | None, decision: Decision
    ) -> None:
        """A ``policy.violated`` event (``policy``: ``vulnerability``) for a pull served with a warning or refused,
        at most one per image and mode per 5 minutes per process."""
        key = (repository, digest, decision.mode)
        now = time.monotonic()
        if self._warned.get(key, 0.0) > now:
            return
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned[key] = now + 300
        async with self.db.write() as conn:
            await record_event(
                conn,
                POLICY_VIOLATED,
                repository=repository,
                tag=None if ":" in reference else reference,
                digest=digest,
                actor=actor,
                payload={"mode": decision.mode, "reason": decision.message[:500], "policy": "vulnerability"},
            )

    def forget(self, namespace: str) -> None:
        """Drop this process's cached policies and decisions of ``namespace`` (after a change made here)."""
        self._policies.pop(namespace, None)
        self._decisions = {k: v for k, v in self._decisions.items() if namespace_of(k[0]) != namespace}
