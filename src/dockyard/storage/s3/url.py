"""The ``s3://bucket/prefix?…`` storage URL: what it may say and how it is checked (pure; no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dockyard.storage.s3.segments import DEFAULT_PART_SIZE, MAX_SEGMENT, MIN_PART


@dataclass(frozen=True, slots=True)
class S3Options:
    """What a ``s3://bucket/prefix?…`` storage URL says."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    addressing: str | None = None
    redirect: bool = False
    redirect_expires: int = 1200
    part_size: int = DEFAULT_PART_SIZE
    max_connections: int = 64


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"storage URL parameter {name}={value!r} is not a boolean")


def _parse_int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"storage URL parameter {name}={value!r} is not an integer") from None
    if not low <= number <= high:
        raise ValueError(f"storage URL parameter {name}={number} is outside [{low}, {high}]")
    return number


def parse_s3_url(url: str) -> S3Options:
    """Parse ``s3://bucket/prefix?endpoint=…&region=…&addressing=path|virtual&redirect=true&part_size=…``.

    Credentials are never part of the URL: they come from the standard AWS chain (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, a profile, or an instance role).
    """
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"not an s3:// URL: {url!r}")
    if parts.username or parts.password:
        raise ValueError("put S3 credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, not in the storage URL")
    bucket = parts.hostname or ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
        raise ValueError(f"storage URL {url!r} does not name a valid bucket")
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in params:
            raise ValueError(f"storage URL parameter {name!r} is given twice")
        params[name] = value
    options: dict[str, Any] = {"bucket": bucket, "prefix": parts.path.strip("/")}
    for name, value in params.items():
        if name == "endpoint":
            endpoint = urlsplit(value)
            if endpoint.scheme not in {"http", "https"} or not endpoint.netloc:
                raise ValueError(f"storage URL parameter endpoint={value!r} is not an http(s) URL")
            options["endpoint"] = value
        elif name == "region":
            options["region"] = value or None
        elif name == "addressing":
            if value not in {"path", "virtual", "auto"}:
                raise ValueError(f"storage URL parameter addressing={value!r} must be path or virtual")
            options["addressing"] = value
        elif name == "redirect":
            options["redirect"] = _parse_bool(name, value)
        elif name == "redirect_expires":
            options["redirect_expires"] = _parse_int(name, value, 1, 7 * 24 * 3600)
        elif name == "part_size":
            options["part_size"] = _parse_int(name, value, MIN_PART, MAX_SEGMENT)
        elif name == "max_connections":
            options["max_connections"] = _parse_int(name, value, 1, 4096)
        else:
            raise ValueError(f"unknown storage URL parameter {name!r} for the s3 driver")
    return S3Options(**options)
