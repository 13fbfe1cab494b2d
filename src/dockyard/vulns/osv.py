"""OSV advisories (https://ossf.github.io/osv-schema/) read into the shape the DB keeps: pure, no I/O.

``parse_advisory`` takes one decoded OSV document and returns an ``Advisory`` or raises ``ValueError`` (the
importer counts and skips such documents). Severity: the CVSS v3/v4 vectors of ``severity`` scored with the
``cvss`` library (the highest base score wins, its label is the advisory's); an advisory without vectors takes a
label from ``database_specific.severity`` (GHSA: ``HIGH``, ``MODERATE``…), a severity of type ``Ubuntu``, or
an affected entry's ``ecosystem_specific``/``database_specific`` ``severity``/``urgency`` (Debian's urgencies,
Alpine none at all: ``unknown``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SEVERITIES = ("unknown", "low", "medium", "high", "critical")
"""In rising order; ``unknown`` ranks lowest (a policy at ``low`` does not count it)."""

_LABELS = {
    "critical": "critical",
    "high": "high",
    "important": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "negligible": "low",
    "unimportant": "low",
    "not yet assigned": "unknown",
    "end-of-life": "unknown",
}


def severity_rank(label: str) -> int:
    return SEVERITIES.index(label) if label in SEVERITIES else 0


def label_of(text: object) -> str | None:
    """A severity word of any source (``MODERATE``, ``unimportant``, ``Important``) as one of ``SEVERITIES``."""
    if not isinstance(text, str):
        return None
    return _LABELS.get(text.strip().lower())


def label_of_score(score: float) -> str:
    """CVSS's qualitative scale (v3 and v4 alike)."""
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "unknown"


def normalise_package(ecosystem: str, name: str) -> str:
    """The name as the index keys it: PyPI names per PEP 503 (case and ``-_.`` runs folded), others as given."""
    if ecosystem == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


@dataclass(frozen=True, slots=True)
class Vector:
    type: str  # CVSS_V3 | CVSS_V4
    vector: str
    score: float


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str
    package: str
    ranges: list[dict[str, Any]]
    versions: list[str]
    fixed: list[str]
    severity: str | None


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    modified: datetime
    aliases: list[str] = field(default_factory=list)
    summary: str = ""
    published: datetime | None = None
    withdrawn: datetime | None = None
    severity: str = "unknown"
    score: float | None = None
    vectors: list[Vector] = field(default_factory=list)
    affected: list[Affected] = field(default_factory=list)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time as OSV writes it (``2024-01-02T03:04:05Z``, fractions allowed), in UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def score_vector(kind: str, vector: str) -> float | None:
    """The CVSS base score of ``vector`` (v3.0/3.1 or v4.0), None when it does not parse."""
    from cvss import CVSS3, CVSS4  # loaded when advisories are imported, not in every server process

    try:
        if kind == "CVSS_V3" or vector.startswith("CVSS:3"):
            return float(CVSS3(vector).base_score)
        if kind == "CVSS_V4" or vector.startswith("CVSS:4"):
            return float(CVSS4(vector).base_score)
    except Exception:  # the library raises its own error classes and, for garbage, ValueError/KeyError
        return None
    return None


def _strings(value: object, limit: int = 1000) -> list[str]:
    return [v for v in value if isinstance(v, str)][:limit] if isinstance(value, list) else []


def _specific_severity(entry: dict[str, Any]) -> str | None:
    for key in ("ecosystem_specific", "database_specific"):
        specific = entry.get(key)
        if isinstance(specific, dict):
            for field_name in ("severity", "urgency"):
                label = label_of(specific.get(field_name))
                if label is not None:
                    return label
    return None


def _ranges(raw: object) -> tuple[list[dict[str, Any]], list[str]]:
    ranges: list[dict[str, Any]] = []
    fixed: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            continue
        events: list[dict[str, str]] = []
        for event in item.get("events") or []:
            if not isinstance(event, dict):
                continue
            for kind in ("introduced", "fixed", "last_affected", "limit"):
                value = event.get(kind)
                if isinstance(value, str) and value:
                    events.append({kind: value})
                    if kind == "fixed":
                        fixed.append(value)
                    break
        ranges.append({"type": item["type"], "events": events})
    return ranges, fixed


def _affected(raw: object) -> list[Affected]:
    entries: list[Affected] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        package = item.get("package")
        if not isinstance(package, dict):
            continue
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str) or not ecosystem or not name:
            continue
        ranges, fixed = _ranges(item.get("ranges"))
        entries.append(
            Affected(
                ecosystem=ecosystem[:100],
                package=normalise_package(ecosystem.split(":", 1)[0], name)[:512],
                ranges=ranges,
                versions=_strings(item.get("versions"), 10_000),
                fixed=fixed,
                severity=_specific_severity(item),
            )
        )
    return entries


def parse_advisory(doc: object) -> Advisory:
    """One OSV document → ``Advisory``. Raises ``ValueError`` when it has no id or no valid ``modified``."""
    if not isinstance(doc, dict):
        raise ValueError("an OSV advisory is a JSON object")
    ident, modified = doc.get("id"), parse_time(doc.get("modified"))
    if not isinstance(ident, str) or not ident or len(ident) > 255:
        raise ValueError("an OSV advisory needs an id")
    if modified is None:
        raise ValueError(f"{ident}: an OSV advisory needs a valid modified time")
    vectors: list[Vector] = []
    labels: list[str] = []
    for entry in doc.get("severity") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("score"), str):
            continue
        kind, value = str(entry.get("type", "")), entry["score"]
        if kind in ("CVSS_V3", "CVSS_V4"):
            score = score_vector(kind, value)
            if score is not None:
                vectors.append(Vector(kind, value, score))
        elif (label := label_of(value)) is not None:  # "Ubuntu": a word
            labels.append(label)
    specific = doc.get("database_specific")
    if isinstance(specific, dict) and (label := label_of(specific.get("severity"))) is not None:
        labels.append(label)
    affected = _affected(doc.get("affected"))
    labels.extend(a.severity for a in affected if a.severity is not None)
    score = max((v.score for v in vectors), default=None)
    severity = label_of_score(score) if score is not None else max(labels, key=severity_rank, default="unknown")
    summary = doc.get("summary") or doc.get("details") or ""
    return Advisory(
        id=ident,
        modified=modified,
        aliases=_strings(doc.get("aliases"), 100),
        summary=summary[:2000] if isinstance(summary, str) else "",
        published=parse_time(doc.get("published")),
        withdrawn=parse_time(doc.get("withdrawn")),
        severity=severity,
        score=score,
        vectors=vectors,
        affected=affected,
    )
