"""Version ordering per ecosystem (``univers``) and OSV's range evaluation: pure, no I/O.

``ECOSYSTEM`` ranges are compared with the ecosystem's own ordering (Debian and Ubuntu: dpkg's; Alpine: apk's;
Red Hat and its rebuilds, SUSE: rpm's; PyPI: PEP 440; npm: SemVer; Go: module versions; Maven: Maven's),
``SEMVER`` ranges with SemVer, ``GIT`` ranges are skipped (no commit is known for an installed package). A version
that its ecosystem cannot parse matches nothing through ranges (only an explicit ``versions`` entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from univers import versions as uv

_ORDERINGS: dict[str, type[uv.Version]] = {
    "Debian": uv.DebianVersion,
    "Ubuntu": uv.DebianVersion,
    "Alpine": uv.AlpineLinuxVersion,
    "Red Hat": uv.RpmVersion,
    "Rocky Linux": uv.RpmVersion,
    "AlmaLinux": uv.RpmVersion,
    "SUSE": uv.RpmVersion,
    "openSUSE": uv.RpmVersion,
    "Mageia": uv.RpmVersion,
    "PyPI": uv.PypiVersion,
    "npm": uv.SemverVersion,
    "Go": uv.GolangVersion,
    "Maven": uv.MavenVersion,
}


def ordering(ecosystem: str, range_type: str = "ECOSYSTEM") -> type[uv.Version] | None:
    """The version class for ``ecosystem`` (release suffix ignored) and range type; None when unknown."""
    if range_type == "SEMVER":
        return uv.SemverVersion
    return _ORDERINGS.get(ecosystem.split(":", 1)[0])


def parse(cls: type[uv.Version], text: str) -> uv.Version | None:
    try:
        return cls(text.removeprefix("v") if cls is uv.SemverVersion else text)
    except Exception:  # univers raises InvalidVersion, ValueError or TypeError depending on the scheme
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    affected: bool
    fixed: str | None = None  # the first fixed version above the installed one, when a range says


def evaluate(ecosystem: str, installed: str, ranges: Sequence[dict[str, Any]], versions: Sequence[str]) -> Verdict:
    """Whether ``installed`` is affected per OSV's rules: listed in ``versions``, or inside a range (at or above an
    ``introduced``, below the next ``fixed``/``limit``, at or below a ``last_affected``)."""
    fixed_candidates: list[str] = []
    hit = installed in versions
    for item in ranges:
        range_type = str(item.get("type", ""))
        cls = ordering(ecosystem, range_type)
        if cls is None or range_type not in ("ECOSYSTEM", "SEMVER"):
            continue
        current = parse(cls, installed)
        if current is None:
            continue
        events = [e for e in item.get("events", []) if isinstance(e, dict)]
        inside, fixed = _in_range(cls, current, events)
        if inside:
            hit = True
            if fixed is not None:
                fixed_candidates.append(fixed)
    if not hit:
        return Verdict(False)
    return Verdict(True, _lowest(ecosystem, fixed_candidates))


def _in_range(cls: type[uv.Version], current: uv.Version, events: list[dict[str, str]]) -> tuple[bool, str | None]:
    """OSV's evaluation of one range: walk the events in version order; ``introduced`` at or below the version
    opens, ``fixed`` at or below it (or ``last_affected`` below it) closes. Returns (affected, fixed version)."""
    parsed: list[tuple[uv.Version | None, str, str]] = []
    for event in events:
        ((kind, value),) = event.items()
        version = None if kind == "introduced" and value == "0" else parse(cls, value)
        if version is None and not (kind == "introduced" and value == "0"):
            continue  # an event its ecosystem cannot read
        parsed.append((version, kind, value))
    lowest = [p for p in parsed if p[0] is None]
    rest = sorted((p for p in parsed if p[0] is not None), key=lambda p: p[0])  # type: ignore[arg-type,return-value]
    affected = False
    for version, kind, _ in [*lowest, *rest]:
        if kind == "introduced" and (version is None or current >= version):
            affected = True
        elif version is not None and _closes(kind, current, version):
            affected = False
    if not affected:
        return False, None
    upper = [value for version, kind, value in rest if kind == "fixed" and version is not None and version > current]
    return True, upper[0] if upper else None


def _closes(kind: str, current: uv.Version, version: uv.Version) -> bool:
    if kind in ("fixed", "limit"):
        return bool(current >= version)
    return kind == "last_affected" and bool(current > version)


def _lowest(ecosystem: str, versions: list[str]) -> str | None:
    if not versions:
        return None
    cls = ordering(ecosystem)
    if cls is None:
        return versions[0]
    keyed = [(parse(cls, v), v) for v in versions]
    readable = [(p, v) for p, v in keyed if p is not None]
    return min(readable, key=lambda pv: pv[0])[1] if readable else versions[0]
