"""Repository-name and tag grammar from the OCI distribution spec, with the length limits clients rely on."""

from __future__ import annotations

import re

from dockyard.errors import Invalid

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 255


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise ``Invalid("name")``."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise Invalid("name", f"repository name must be 1 to {MAX_NAME_LENGTH} characters", {"name": name[:300]})
    if not NAME_RE.match(name):
        raise Invalid("name", "invalid repository name", {"name": name[:300]})
    return name


def validate_tag(tag: str) -> str:
    """Return ``tag`` if valid, else raise ``Invalid("tag")``."""
    if not TAG_RE.match(tag):
        raise Invalid("tag", "invalid tag: at most 128 of [A-Za-z0-9_.-], not starting with . or -", {"tag": tag[:200]})
    return tag


LIBRARY = "library"  # the namespace of one-component repository names (Docker Hub's official images)


def namespace_of(name: str) -> str:
    """The account a repository belongs to: its first path component; one-component names are ``library``'s."""
    head, sep, _ = name.partition("/")
    return head if sep else LIBRARY


def short_name_of(name: str) -> str:
    """The Hub name of a registry repository: the path after its namespace (``alpine`` for ``alpine``)."""
    head, sep, rest = name.partition("/")
    return rest if sep else head
