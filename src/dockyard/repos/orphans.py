"""Which untagged manifests go with the ones a retention run deletes: the children of a deleted index (and theirs,
for an index in an index) and the referrers of a deleted manifest (its signatures, SBOMs, attestations), when
nothing else keeps them — no tag, no index that stays, no subject that stays — and they are as old as the run's
``untagged_days`` asks. Without this, a multi-platform image left untagged took one run for its index and another
for its platforms (only the index was unlisted). Pure: ``retention`` reads the repository's manifests and index
references and passes them in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ManifestFacts:
    """What the closure needs of one manifest of the repository."""

    digest: str
    created_at: datetime
    subject: str | None
    tagged: bool


def going_with(
    deleted: Iterable[str],
    manifests: Mapping[str, ManifestFacts],
    listed_by: Mapping[str, set[str]],
    cutoff: datetime,
) -> list[str]:
    """The manifests (digests, parents before children, in a stable order) that go with ``deleted``: untagged,
    created before ``cutoff``, every index of the repository that lists them going too, and their subject (if
    any) going too or absent. ``listed_by`` maps a child digest to the digests of the indexes listing it."""
    children: dict[str, list[str]] = {}
    for child, parents in listed_by.items():
        for parent in parents:
            children.setdefault(parent, []).append(child)
    referrers: dict[str, list[str]] = {}
    for manifest in manifests.values():
        if manifest.subject is not None:
            referrers.setdefault(manifest.subject, []).append(manifest.digest)
    gone = set(deleted)
    added: list[str] = []
    frontier = sorted(gone)
    while frontier:
        found: list[str] = []
        for digest in frontier:
            for candidate in sorted({*children.get(digest, ()), *referrers.get(digest, ())}):
                facts = manifests.get(candidate)
                if facts is None or candidate in gone or facts.tagged or facts.created_at >= cutoff:
                    continue
                if any(parent not in gone for parent in listed_by.get(candidate, ())):
                    continue  # an index that stays lists it
                if facts.subject is not None and facts.subject in manifests and facts.subject not in gone:
                    continue  # it refers to a manifest that stays
                gone.add(candidate)
                found.append(candidate)
        added += found
        frontier = found
    return added
