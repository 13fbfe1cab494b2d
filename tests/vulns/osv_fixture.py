"""A small OSV database written by the tests (real OSV schema): advisories that affect, do not affect (fixed
earlier, another distro release, another ecosystem) and partially affect the fixture packages."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"  # 7.5


def advisory(
    ident: str, ecosystem: str, name: str, *, modified: str = "2024-01-01T00:00:00Z", **extra: Any
) -> dict[str, Any]:
    affected = {"package": {"ecosystem": ecosystem, "name": name}}
    affected.update(extra.pop("affected", {}))
    return {"schema_version": "1.6.0", "id": ident, "modified": modified, "affected": [affected], **extra}


def ranges(*events: dict[str, str], kind: str = "ECOSYSTEM") -> dict[str, Any]:
    return {"ranges": [{"type": kind, "events": list(events)}]}


def database_v1() -> list[dict[str, Any]]:
    return [
        advisory(  # affects: Debian 12 openssl (source of libssl3) below the fix
            "DSA-0001-1",
            "Debian:12",
            "openssl",
            aliases=["CVE-2024-0001"],
            severity=[{"type": "CVSS_V3", "score": CRITICAL}],
            affected=ranges({"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}),
        ),
        advisory(  # another release: never Debian 12
            "DLA-0002-1",
            "Debian:11",
            "openssl",
            aliases=["CVE-2024-0002"],
            severity=[{"type": "CVSS_V3", "score": CRITICAL}],
            affected=ranges({"introduced": "0"}, {"fixed": "1.1.1w-0+deb11u1"}),
        ),
        advisory(  # last_affected at the installed version
            "DEBIAN-CVE-2024-0003",
            "Debian:12",
            "zlib",
            aliases=["CVE-2024-0003"],
            severity=[{"type": "CVSS_V3", "score": HIGH}],
            affected=ranges({"introduced": "0"}, {"last_affected": "1:1.2.13.dfsg-1"}),
        ),
        advisory(  # PyPI, name written differently; severity only in database_specific
            "GHSA-aaaa-bbbb-cccc",
            "PyPI",
            "Requests",
            aliases=["CVE-2024-0004"],
            database_specific={"severity": "MODERATE"},
            affected=ranges({"introduced": "2.0.0"}, {"fixed": "2.31.0"}),
        ),
        advisory(  # partially: explicit versions and a later range, neither the installed 4.17.20
            "GHSA-dddd-eeee-ffff",
            "npm",
            "lodash",
            aliases=["CVE-2024-0005"],
            severity=[{"type": "CVSS_V3", "score": CRITICAL}],
            affected={
                "versions": ["4.17.19"],
                **ranges({"introduced": "4.17.21"}, {"fixed": "4.17.22"}, kind="SEMVER"),
            },
        ),
        advisory(  # another ecosystem with the same name
            "GO-2024-0006",
            "Go",
            "zlib",
            affected=ranges({"introduced": "0"}, {"fixed": "9.9.9"}),
        ),
        advisory(  # fixed earlier than the installed requests of the clean image
            "PYSEC-2024-7",
            "PyPI",
            "requests",
            aliases=["CVE-2024-0007"],
            affected=ranges({"introduced": "0"}, {"fixed": "2.20.0"}),
        ),
    ]


def database_v2() -> list[dict[str, Any]]:
    """v1 with the lodash advisory updated (newer ``modified``): now every version below 4.17.21."""
    docs = [d for d in database_v1() if d["id"] != "GHSA-dddd-eeee-ffff"]
    docs.append(
        advisory(
            "GHSA-dddd-eeee-ffff",
            "npm",
            "lodash",
            modified="2024-06-01T00:00:00Z",
            aliases=["CVE-2024-0005"],
            severity=[{"type": "CVSS_V3", "score": CRITICAL}],
            affected=ranges({"introduced": "0"}, {"fixed": "4.17.21"}, kind="SEMVER"),
        )
    )
    return docs


def write_zip(path: Path, docs: list[dict[str, Any]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for doc in docs:
            archive.writestr(f"{doc['id']}.json", json.dumps(doc))
    return path
