"""VEX statements and allowlists: which findings a namespace has declared harmless, and why.

- **OpenVEX** (https://github.com/openvex/spec, v0.0.x and v0.2.x JSON): ``parse_openvex`` turns a document into
  statements (vulnerability × product × subcomponent). A statement applies to a finding when its vulnerability
  is the finding's id or one of its aliases, and its product is the image (a digest, or ``pkg:oci/…@sha256:…``)
  or the finding's package (a purl; without a version it covers every version), and its subcomponent (if any)
  is the finding's package. The latest applicable statement decides: ``not_affected`` and ``fixed`` suppress,
  ``affected`` and ``under_investigation`` do not.
  Statements come from the namespace's uploads (``manage``) and from OpenVEX documents attached to the image as
  referrers (``vexrefs``), which apply to that image only.
- **Allowlist** (Harbor's CVE allowlist): a vulnerability id (or alias) with a reason and an optional expiry;
  an expired entry suppresses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from dockyard.errors import Invalid
from dockyard.vulns.osv import parse_time

VEX_STATUSES = ("not_affected", "fixed", "affected", "under_investigation")
SUPPRESSING = frozenset({"not_affected", "fixed"})
MAX_STATEMENTS = 1000


@dataclass(frozen=True, slots=True)
class VexStatement:
    vulnerability: str
    product: str
    subcomponent: str
    status: str
    justification: str
    timestamp: datetime | None
    source: str = ""  # where it comes from when not the namespace's uploads (a document attached to the image)


@dataclass(frozen=True, slots=True)
class AllowEntry:
    vulnerability: str
    reason: str
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Suppression:
    kind: str  # vex | allowlist
    reason: str


def _ids(value: object) -> list[str]:
    """Product or subcomponent ids: strings (v0.0.x) or ``{"@id": …}`` objects (v0.2.x)."""
    out: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("@id"), str):
            out.append(item["@id"])
    return out


def _vulnerabilities(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        names = [value.get("name"), value.get("@id"), *(value.get("aliases") or [])]
        return [n for n in names if isinstance(n, str) and n]
    return []


def parse_openvex(doc: object) -> tuple[str, list[VexStatement]]:
    """(document id, statements). Raises ``Invalid("vex")`` for a document that is not OpenVEX."""
    if not isinstance(doc, dict) or not isinstance(doc.get("statements"), list):
        raise Invalid("vex", "an OpenVEX document is a JSON object with a statements list")
    context = doc.get("@context")
    if not isinstance(context, str) or "openvex" not in context:
        raise Invalid("vex", "@context must name the OpenVEX namespace (https://openvex.dev/ns/…)")
    document = doc.get("@id")
    document_id = document if isinstance(document, str) and document else ""
    when = parse_time(doc.get("timestamp"))
    statements: list[VexStatement] = []
    for raw in doc["statements"]:
        if not isinstance(raw, dict):
            raise Invalid("vex", "each statement is a JSON object")
        status = raw.get("status")
        if status not in VEX_STATUSES:
            raise Invalid("vex", f"status must be one of {', '.join(VEX_STATUSES)}")
        vulnerabilities = _vulnerabilities(raw.get("vulnerability"))
        if not vulnerabilities:
            raise Invalid("vex", "each statement names a vulnerability")
        products: list[dict[str, Any] | str] = raw.get("products") or []
        if not isinstance(products, list) or not products:
            raise Invalid("vex", "each statement names at least one product")
        justification = raw.get("justification") or raw.get("impact_statement") or raw.get("status_notes") or ""
        if status == "not_affected" and not justification:
            raise Invalid("vex", "a not_affected statement needs a justification or an impact_statement")
        stamp = parse_time(raw.get("timestamp")) or when
        for product in products:
            (product_id,) = _ids([product]) or [""]
            if not product_id:
                raise Invalid("vex", "a product needs an @id")
            subs = _ids(product.get("subcomponents")) if isinstance(product, dict) else []
            for vulnerability in vulnerabilities:
                for sub in subs or [""]:
                    statements.append(
                        VexStatement(
                            vulnerability[:255], product_id, sub, str(status), str(justification)[:2000], stamp
                        )
                    )
        if len(statements) > MAX_STATEMENTS:
            raise Invalid("vex", f"at most {MAX_STATEMENTS} statements per document")
    return document_id, statements


def _strip(purl: str) -> str:
    return unquote(purl.split("#", 1)[0].split("?", 1)[0])


def purl_covers(pattern: str, purl: str) -> bool:
    """``pattern`` (a purl, its version optional) names ``purl``'s package; qualifiers and subpath are ignored."""
    if not pattern.startswith("pkg:") or not purl:
        return False
    want, have = _strip(pattern), _strip(purl)
    if "@" in want.rsplit("/", 1)[-1]:
        return want == have
    return have.split("@", 1)[0] == want


def names_image(product: str, image_digest: str) -> bool:
    """``product`` is the image: its digest, or an OCI purl (``pkg:oci/name@sha256%3A…``) of it."""
    if product == image_digest:
        return True
    if product.startswith("pkg:oci/"):
        version = _strip(product).rpartition("@")[2]
        return version == image_digest
    return False


@dataclass(frozen=True, slots=True)
class Suppressions:
    """A namespace's VEX statements and allowlist, loaded once for a report or a pull decision."""

    statements: Sequence[VexStatement]
    allowlist: Sequence[AllowEntry]

    def why(self, ids: Iterable[str], purl: str, image_digest: str, now: datetime) -> Suppression | None:
        """The suppression of a finding (its id and aliases ``ids``, its package ``purl``), or None."""
        names = set(ids)
        latest: VexStatement | None = None
        for s in self.statements:
            if s.vulnerability not in names:
                continue
            if s.subcomponent:
                applies = purl_covers(s.subcomponent, purl) and (
                    names_image(s.product, image_digest) or purl_covers(s.product, purl)
                )
            else:
                applies = names_image(s.product, image_digest) or purl_covers(s.product, purl)
            if applies and (latest is None or (s.timestamp or now) >= (latest.timestamp or now)):
                latest = s
        if latest is not None and latest.status in SUPPRESSING:
            reason = f"{latest.status}: {latest.justification}".rstrip(": ")
            return Suppression("vex", f"{reason} ({latest.source})" if latest.source else reason)
        for entry in self.allowlist:
            if entry.vulnerability in names and (entry.expires_at is None or entry.expires_at > now):
                return Suppression("allowlist", entry.reason or "allowlisted")
        return None
