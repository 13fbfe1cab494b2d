"""Pure parts of ``dockyard.vulns``: OSV parsing and severities, range evaluation per ecosystem, matching by
distro release and source package, and VEX/allowlist suppression."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.errors import Invalid
from dockyard.inventory.model import InstalledPackage
from dockyard.vulns.matching import AffectedRow, PackageKey, match_packages
from dockyard.vulns.osv import parse_advisory
from dockyard.vulns.suppress import AllowEntry, Suppressions, parse_openvex
from dockyard.vulns.versions import evaluate

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_severity_from_cvss_v3_v4_and_words() -> None:
    v3 = parse_advisory(
        {
            "id": "A",
            "modified": "2024-01-01T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        }
    )
    assert (v3.severity, v3.score) == ("critical", 9.8)
    v4 = parse_advisory(
        {
            "id": "B",
            "modified": "2024-01-01T00:00:00Z",
            "severity": [
                {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}
            ],
        }
    )
    assert (v4.severity, v4.score) == ("critical", 9.3)
    words = parse_advisory(
        {"id": "C", "modified": "2024-01-01T00:00:00Z", "database_specific": {"severity": "MODERATE"}}
    )
    assert (words.severity, words.score) == ("medium", None)
    debian = parse_advisory(
        {
            "id": "D",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {"package": {"ecosystem": "Debian:12", "name": "x"}, "ecosystem_specific": {"urgency": "unimportant"}}
            ],
        }
    )
    assert debian.severity == "low"
    with pytest.raises(ValueError, match="modified"):
        parse_advisory({"id": "E"})  # no modified


@pytest.mark.parametrize(
    ("ecosystem", "installed", "events", "affected", "fixed"),
    [
        (
            "Debian:12",
            "1:2.36-9+deb12u4",
            [{"introduced": "0"}, {"fixed": "1:2.36-9+deb12u7"}],
            True,
            "1:2.36-9+deb12u7",
        ),
        ("Debian:12", "1:2.36-9+deb12u7", [{"introduced": "0"}, {"fixed": "1:2.36-9+deb12u7"}], False, None),
        ("Alpine:v3.19", "3.1.4-r5", [{"introduced": "0"}, {"fixed": "3.1.4-r6"}], True, "3.1.4-r6"),
        ("PyPI", "2.0.0rc1", [{"introduced": "1.0"}, {"fixed": "2.0.0"}], True, "2.0.0"),
        ("Go", "v1.10.0", [{"introduced": "0"}, {"fixed": "1.9.0"}], False, None),
        ("Maven", "2.17.0", [{"introduced": "2.0"}, {"last_affected": "2.17.0"}], True, None),
        ("Red Hat", "1.2-3.el9", [{"introduced": "0"}, {"fixed": "1.2-4.el9"}], True, "1.2-4.el9"),
        ("npm", "4.17.20", [{"introduced": "0"}, {"limit": "4.17.0"}], False, None),
    ],
)
def test_ranges(
    ecosystem: str, installed: str, events: list[dict[str, str]], affected: bool, fixed: str | None
) -> None:
    verdict = evaluate(ecosystem, installed, [{"type": "ECOSYSTEM", "events": events}], [])
    assert (verdict.affected, verdict.fixed) == (affected, fixed)


def test_release_and_source_package() -> None:
    libssl = InstalledPackage(
        "Debian",
        "libssl3",
        "3.0.11-1~deb12u1",
        "pkg:deb/debian/libssl3",
        "sha256:l",
        "/s",
        release="12",
        source_name="openssl",
    )
    old = InstalledPackage(
        "Debian",
        "libssl3",
        "3.0.11-1~deb12u1",
        "pkg:deb/debian/libssl3",
        "sha256:l",
        "/s",
        release="11",
        source_name="openssl",
    )
    row = AffectedRow(
        "DSA-1",
        "Debian:12",
        "openssl",
        json.dumps([{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}]),
        "[]",
        "high",
        7.5,
    )
    affected = {PackageKey("Debian:12", "openssl"): [row]}
    (finding,) = match_packages([libssl, old], affected)
    assert (finding.package, finding.fixed) == ("libssl3", "3.0.13-1~deb12u1")


def test_vex_and_allowlist() -> None:
    doc = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "x",
        "statements": [
            {
                "vulnerability": {"name": "CVE-1"},
                "products": [{"@id": "pkg:oci/a@sha256%3Aabc"}],
                "status": "not_affected",
                "justification": "component_not_present",
            }
        ],
    }
    _, statements = parse_openvex(doc)
    rules = Suppressions(
        statements,
        [AllowEntry("CVE-2", "r", NOW + timedelta(days=1)), AllowEntry("CVE-3", "old", NOW - timedelta(days=1))],
    )
    assert rules.why(["DSA-1", "CVE-1"], "pkg:deb/x@1", "sha256:abc", NOW) is not None
    assert rules.why(["CVE-1"], "pkg:deb/x@1", "sha256:other", NOW) is None
    assert rules.why(["CVE-2"], "", "sha256:abc", NOW) is not None
    assert rules.why(["CVE-3"], "", "sha256:abc", NOW) is None  # expired
    with pytest.raises(Invalid):
        parse_openvex({"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"status": "not_affected"}]})
