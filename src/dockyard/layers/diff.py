"""The difference between two platform images, from their configs and their layer indexes: config changes (env,
entrypoint, cmd, user, labels, exposed ports, working directory), layers shared, added and removed, and the paths
of the merged filesystems added, removed or changed (kind, size, mode, owner, link target or content hash).

Modification times are not compared (a rebuild touches them all), nor the metadata of implicit directories.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.core.jsonparse import loads_limited
from dockyard.layers.images import ImagePlatform
from dockyard.layers.merged import FileEntry, IndexedEntry, entry_view

MAX_FILE_CHANGES = 10_000
CONFIG_FIELDS: tuple[tuple[str, str], ...] = (
    ("env", "Env"),
    ("entrypoint", "Entrypoint"),
    ("cmd", "Cmd"),
    ("user", "User"),
    ("labels", "Labels"),
    ("exposed_ports", "ExposedPorts"),
    ("workdir", "WorkingDir"),
)
COMPARED = ("kind", "size", "mode", "uid", "gid", "link", "sha256")


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """``field`` (one of ``CONFIG_FIELDS``' names) went from ``before`` to ``after`` (JSON values, None if unset)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class FileChange:
    """``change`` is ``added``, ``removed`` or ``changed`` (``fields`` then names what differs)."""

    path: str
    change: str
    before: FileEntry | None
    after: FileEntry | None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImageDiff:
    before: ImagePlatform
    after: ImagePlatform
    config: tuple[ConfigChange, ...]
    layers_shared: tuple[str, ...]
    layers_removed: tuple[str, ...]
    layers_added: tuple[str, ...]
    files: tuple[FileChange, ...]
    added: int
    removed: int
    changed: int
    truncated: bool  # more than ``MAX_FILE_CHANGES`` file changes; ``files`` holds the first, by path


def config_values(content: bytes | None) -> dict[str, Any]:
    """The compared fields of an image config (``{}`` when unreadable). Exposed ports as a sorted list."""
    if content is None:
        return {}
    try:
        doc = loads_limited(content)
    except (ValueError, RecursionError):
        return {}
    inner = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(inner, dict):
        return {}
    values: dict[str, Any] = {}
    for name, key in CONFIG_FIELDS:
        value = inner.get(key)
        if name == "exposed_ports" and isinstance(value, dict):
            value = sorted(value)
        if value in (None, "", [], {}):
            value = None
        values[name] = value
    return values


def config_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[ConfigChange, ...]:
    return tuple(
        ConfigChange(name, before.get(name), after.get(name))
        for name, _ in CONFIG_FIELDS
        if before.get(name) != after.get(name)
    )


def _differences(a: IndexedEntry, b: IndexedEntry) -> tuple[str, ...]:
    if a.is_dir and b.is_dir and (a.implicit or b.implicit):
        return ()
    return tuple(name for name in COMPARED if getattr(a, name) != getattr(b, name))


def file_changes(
    before: Mapping[str, IndexedEntry], after: Mapping[str, IndexedEntry], *, limit: int = MAX_FILE_CHANGES
) -> tuple[list[FileChange], int, int, int]:
    """Changes by path (at most ``limit``) and the counts of added, removed and changed paths."""
    changes: list[FileChange] = []
    added = removed = changed = 0
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path), after.get(path)
        if a is None and b is not None:
            added += 1
            change = FileChange(f"/{path}", "added", None, entry_view(path, b))
        elif b is None and a is not None:
            removed += 1
            change = FileChange(f"/{path}", "removed", entry_view(path, a), None)
        elif a is not None and b is not None and (fields := _differences(a, b)):
            changed += 1
            change = FileChange(f"/{path}", "changed", entry_view(path, a), entry_view(path, b), fields)
        else:
            continue
        if len(changes) < limit:
            changes.append(change)
    return changes, added, removed, changed


def layer_changes(before: ImagePlatform, after: ImagePlatform) -> tuple[tuple[str, ...], ...]:
    """(shared, removed, added) layer digests, each in its image's order."""
    old, new = set(before.layer_digests), set(after.layer_digests)
    shared = tuple(d for d in after.layer_digests if d in old)
    removed = tuple(d for d in before.layer_digests if d not in new)
    added = tuple(d for d in after.layer_digests if d not in old)
    return shared, removed, added
