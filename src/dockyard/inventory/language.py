"""Detectors of language packages installed as files: Python distributions (``*.dist-info/METADATA``,
``*.egg-info/PKG-INFO`` or an ``*.egg-info`` file: the core-metadata email-header format) and Node packages
(``node_modules/<name>/package.json``, ``node_modules/@scope/<name>/package.json``).

Unlike a distribution's package database, one language record is one package: a malformed one (test fixtures
inside ``node_modules`` are often broken on purpose) is skipped — the reader returns nothing — rather than ending
the image's inventory. Sizes are capped before parsing.
"""

from __future__ import annotations

import json
import re
from typing import IO

from dockyard.inventory.records import PackageDBError, PackageRecord, RecordType, check_name, check_version

MAX_METADATA = 4 * 1024 * 1024  # headers come first; a description may be long but is not read
MAX_PACKAGE_JSON = 1024 * 1024
_NPM_PATH = re.compile(r"(?:^|/)node_modules/((?:@[^/]+/)?[^/@][^/]*)/package\.json$")


def is_python_metadata(path: str) -> bool:
    return path.endswith((".dist-info/METADATA", ".egg-info/PKG-INFO")) or (path.endswith(".egg-info") and "/" in path)


def is_npm_package(path: str) -> bool:
    return _NPM_PATH.search(path) is not None


def read_python(content: IO[bytes]) -> list[PackageRecord]:
    """The distribution a core-metadata file describes (``Name``, ``Version``), or nothing if malformed."""
    head = content.read(MAX_METADATA)
    header_end = head.find(b"\n\n")
    headers = head if header_end < 0 else head[: header_end + 1]
    if b"\x00" in headers:
        return []
    from email.parser import BytesHeaderParser  # the email package: on the first Python package found
    from email.policy import compat32

    message = BytesHeaderParser(policy=compat32).parsebytes(headers)
    try:
        name = check_name(str(message.get("Name", "")).strip(), "python metadata")
        version = check_version(str(message.get("Version", "")).strip(), "python metadata")
    except PackageDBError:
        return []
    return [PackageRecord(RecordType.PYPI, name, version)]


def read_package_json(content: IO[bytes]) -> list[PackageRecord]:
    """The package a ``package.json`` under ``node_modules`` describes (``name``, ``version``), or nothing."""
    data = content.read(MAX_PACKAGE_JSON + 1)
    if len(data) > MAX_PACKAGE_JSON:
        return []
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return []
    if not isinstance(document, dict):
        return []
    name, version = document.get("name"), document.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return []
    try:
        return [PackageRecord(RecordType.NPM, check_name(name, "npm"), check_version(version, "npm"))]
    except PackageDBError:
        return []
