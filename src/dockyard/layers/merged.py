"""The merged filesystem of an image: layer index rows applied bottom to top as a container runtime applies the
layers — a whiteout removes what lower layers had at its path, an opaque marker empties its directory of what
lower layers put there, an entry replaces what was at its path (a non-directory takes the subtree with it), and
an implicit directory (``member`` -1) only creates a directory that is not there yet.

``merge`` works on any subset of rows that is closed under what it asks about: all rows of the layers (a whole
tree, for diffs), or the rows on the path from the root to one directory plus that directory's children (a
listing; ``rows_for`` reads exactly those). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.layers.tarstream import Kind, base_of, parent_of
from dockyard.models import LayerFile

_MARKERS = (Kind.WHITEOUT, Kind.OPAQUE)
PATHS_PER_QUERY = 500  # paths in one IN (…) of ``rows_at``


@dataclass(frozen=True, slots=True)
class IndexedEntry:
    """A ``layer_files`` row of layer ``layer`` (see ``dockyard.models.layers.LayerFile``)."""

    layer: str
    seq: int
    member: int
    path: str
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: int
    link: str | None
    sha256: str | None

    @property
    def implicit(self) -> bool:
        return self.member < 0

    @property
    def is_dir(self) -> bool:
        return self.kind == Kind.DIR


@dataclass(slots=True)
class Node:
    """A path of the merged tree: ``entry`` None for the root when no layer has an entry for it."""

    entry: IndexedEntry | None = None
    children: dict[str, Node] = field(default_factory=dict)


COLUMNS = (
    LayerFile.layer_digest,
    LayerFile.seq,
    LayerFile.member,
    LayerFile.path,
    LayerFile.kind,
    LayerFile.size,
    LayerFile.mode,
    LayerFile.uid,
    LayerFile.gid,
    LayerFile.uname,
    LayerFile.gname,
    LayerFile.mtime,
    LayerFile.link,
    LayerFile.sha256,
)


def from_row(row: Any) -> IndexedEntry:
    return IndexedEntry(
        row.layer_digest,
        row.seq,
        row.member,
        row.path,
        row.kind,
        row.size,
        row.mode,
        row.uid,
        row.gid,
        row.uname,
        row.gname,
        row.mtime,
        row.link,
        row.sha256,
    )


def chain_of(path: str) -> list[str]:
    """``path`` and its ancestors, root (``""``) first."""
    chain = [""]
    parts = path.split("/") if path else []
    for i in range(len(parts)):
        chain.append("/".join(parts[: i + 1]))
    return chain


async def rows_for(
    conn: AsyncConnection, layers: Sequence[str], path: str, *, children: bool
) -> dict[str, list[IndexedEntry]]:
    """The rows of ``layers`` at ``path`` and its ancestors (and, with ``children``, in the directory ``path``),
    by layer, in ``seq`` order."""
    where: ColumnElement[bool] = LayerFile.path.in_(chain_of(path))
    if children:
        where = or_(where, LayerFile.dir == path)
    rows = await conn.execute(
        select(*COLUMNS).where(LayerFile.layer_digest.in_(sorted(set(layers))), where).order_by(LayerFile.seq)
    )
    found: dict[str, list[IndexedEntry]] = {digest: [] for digest in layers}
    for row in rows:
        found[row.layer_digest].append(from_row(row))
    return found


async def rows_at(conn: AsyncConnection, layers: Sequence[str], paths: Iterable[str]) -> dict[str, list[IndexedEntry]]:
    """The rows of ``layers`` at exactly ``paths`` (``PATHS_PER_QUERY`` paths a statement), by layer, in ``seq``
    order."""
    wanted = sorted(set(paths))
    found: dict[str, list[IndexedEntry]] = {digest: [] for digest in layers}
    for start in range(0, len(wanted), PATHS_PER_QUERY):
        rows = await conn.execute(
            select(*COLUMNS).where(
                LayerFile.layer_digest.in_(sorted(set(layers))),
                LayerFile.path.in_(wanted[start : start + PATHS_PER_QUERY]),
            )
        )
        for row in rows:
            found[row.layer_digest].append(from_row(row))
    for entries in found.values():
        entries.sort(key=lambda entry: entry.seq)
    return found


async def all_rows(conn: AsyncConnection, layer: str) -> list[IndexedEntry]:
    """Every row of one layer, in ``seq`` order."""
    rows = await conn.execute(select(*COLUMNS).where(LayerFile.layer_digest == layer).order_by(LayerFile.seq))
    return [from_row(row) for row in rows]


def _walk(root: Node, path: str, *, create: bool) -> Node | None:
    node = root
    for part in path.split("/") if path else []:
        child = node.children.get(part)
        if child is None:
            if not create:
                return None
            child = node.children[part] = Node()
        node = child
    return node


def _remove(root: Node, path: str) -> None:
    if not path:
        root.children.clear()
        return
    parent = _walk(root, parent_of(path), create=False)
    if parent is not None:
        parent.children.pop(base_of(path), None)


def _apply(root: Node, entry: IndexedEntry) -> None:
    if entry.path:
        parent = _walk(root, parent_of(entry.path), create=True)
        assert parent is not None
        node = parent.children.setdefault(base_of(entry.path), Node())
    else:
        node = root
    current = node.entry
    if entry.implicit and (node is root or (current is not None and current.is_dir)):
        return  # an implicit directory never overrides a directory that is there
    node.entry = entry
    if not entry.is_dir:
        node.children.clear()


def merge(layers: Sequence[str], rows: dict[str, list[IndexedEntry]]) -> Node:
    """The merged tree of ``layers`` (bottom first) from their ``rows`` (each layer's in ``seq`` order).

    Within a layer, whiteouts and opaque markers apply first (they hide what the layers *below* have), then the
    layer's entries in stream order, so that a layer may both hide a path and bring a new one there."""
    root = Node()
    for layer in layers:
        own = rows.get(layer, ())
        for entry in own:
            if entry.kind == Kind.WHITEOUT:
                _remove(root, entry.path)
            elif entry.kind == Kind.OPAQUE:
                node = _walk(root, entry.path, create=False)
                if node is not None:
                    node.children.clear()
        for entry in own:
            if entry.kind not in _MARKERS:
                _apply(root, entry)
    return root


def find(root: Node, path: str) -> Node | None:
    """The node at ``path`` if it exists in the merged tree: every ancestor a directory."""
    node = root
    for part in path.split("/") if path else []:
        if node is not root and (node.entry is None or not node.entry.is_dir):
            return None
        child = node.children.get(part)
        if child is None or child.entry is None:
            return None
        node = child
    return node


def flatten(root: Node) -> Iterator[tuple[str, IndexedEntry]]:
    """Every (path, entry) of the merged tree below the root, parents before children."""
    stack: list[tuple[str, Node]] = [("", root)]
    while stack:
        prefix, node = stack.pop()
        for name, child in node.children.items():
            if child.entry is None:
                continue
            path = f"{prefix}/{name}" if prefix else name
            yield path, child.entry
            if child.entry.is_dir:
                stack.append((path, child))


def tree_of(layers: Sequence[str], rows: Iterable[tuple[str, list[IndexedEntry]]]) -> dict[str, IndexedEntry]:
    """The whole merged filesystem as path -> entry."""
    return dict(flatten(merge(layers, dict(rows))))


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A path of an image's merged filesystem as callers see it: ``path`` absolute (``/etc/hello``), ``kind``
    one of ``file dir symlink hardlink other``, ``link`` a symlink's target as written or a hard link's target
    path, ``sha256`` a regular file's content hash, ``layer`` the digest of the layer it comes from (None for the
    root when no layer has an entry for it)."""

    path: str
    name: str
    kind: str
    size: int
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: int
    link: str | None
    sha256: str | None
    layer: str | None


def entry_view(path: str, entry: IndexedEntry | None) -> FileEntry:
    """The caller's view of ``entry`` at normalised ``path`` (the root when ``entry`` is None)."""
    shown = f"/{path}"
    if entry is None:
        return FileEntry(shown, "/", Kind.DIR, 0, 0o755, 0, 0, "", "", 0, None, None, None)
    link = f"/{entry.link}" if entry.kind == Kind.HARDLINK and entry.link is not None else entry.link
    return FileEntry(
        shown,
        base_of(path) or "/",
        entry.kind,
        entry.size,
        entry.mode,
        entry.uid,
        entry.gid,
        entry.uname,
        entry.gname,
        entry.mtime,
        link,
        entry.sha256,
        entry.layer,
    )
