"""Reading a Dockerfile the way the build needs it, without running it: the base images it builds ``FROM``
(:func:`from_references`), and how an image reference splits into registry host, repository and tag or digest
(:func:`split_reference`). The executor resolves and pulls the bases; the pipeline can use the same list to
queue the builds that depend on a pushed image."""

from __future__ import annotations

import re
from collections.abc import Mapping

_ARG_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def from_references(dockerfile: str, build_args: Mapping[str, str]) -> list[str]:
    """The base images a Dockerfile builds ``FROM``, as written (``ARG`` defaults before the first ``FROM`` and
    build args substituted), without ``scratch`` and earlier stages, in order, each once."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    seen_from = False
    joined = re.sub(r"\\\r?\n", " ", dockerfile)
    for raw in joined.splitlines():
        words = raw.strip().split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].upper()
        if keyword == "ARG" and not seen_from:
            for word in words[1:]:
                name, _, default = word.partition("=")
                args[name] = build_args.get(name, default.strip("\"'"))
        elif keyword == "FROM":
            seen_from = True
            rest = [w for w in words[1:] if not w.startswith("--")]
            if not rest:
                continue
            image = _ARG_REF.sub(lambda m: _substitute(m, args), rest[0])
            if len(rest) >= 3 and rest[1].upper() == "AS":
                stages.add(rest[2].lower())
            if image.lower() == "scratch" or image.lower() in stages or image in found:
                continue
            found.append(image)
    return found


def _substitute(match: re.Match[str], args: Mapping[str, str]) -> str:
    """``$VAR``, ``${VAR}``, ``${VAR-default}`` (unset) and ``${VAR:-default}`` (unset or empty)."""
    name, colon, default = match.group(1) or match.group(4), match.group(2), match.group(3)
    value = args.get(name)
    if default is not None and (value is None or (colon and value == "")):
        return default
    return value or ""


def split_reference(reference: str, default_host: str) -> tuple[str, str, str]:
    """``(registry host, repository, tag or digest)`` of an image reference; a name without a registry host
    means this Dockyard (``default_host``)."""
    name, digest = reference, ""
    if "@" in name:
        name, digest = name.split("@", 1)
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
    else:
        host, path = default_host, name
    tag = ""
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path, tag = path.rsplit(":", 1)
    return host, path, digest or tag or "latest"
