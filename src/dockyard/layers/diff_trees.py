"""The two merged trees a diff compares, read from the layer indexes — only as much of them as can differ.

Two images built on one base share their bottom layers. Above that shared prefix, only the paths their own top
layers name can differ (an entry there, or its parents), plus what those entries hide of the prefix: a whiteout,
an opaque marker or a non-directory takes a prefix directory's subtree with it. So the trees are merged from every
row of the unshared top layers and, of the shared layers, only the rows at those paths, at their ancestors, and in
the subtrees they hide — a subset ``merge`` accepts because it holds, for every path, the rows of all its
ancestors. Both trees then hold exactly the paths where a difference is possible, and everything outside them is
the same in both images. Images sharing no bottom layer are merged whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.layers.merged import COLUMNS, IndexedEntry, all_rows, chain_of, from_row, rows_at, tree_of
from dockyard.layers.tarstream import Kind
from dockyard.models import LayerFile

MAX_SUBTREES = 64  # prefix directories hidden by the top layers read one by one; more: merge the images whole
Tree = dict[str, IndexedEntry]


def shared_prefix(before: Sequence[str], after: Sequence[str]) -> int:
    """How many bottom layers the two images have in common, in the same order."""
    count = 0
    for a, b in zip(before, after, strict=False):
        if a != b:
            break
        count += 1
    return count


def _hides(entry: IndexedEntry) -> bool:
    """Whether ``entry`` hides what lower layers have below its path."""
    return entry.kind in (Kind.WHITEOUT, Kind.OPAQUE) or not entry.is_dir


async def _subtree(conn: AsyncConnection, layers: Sequence[str], path: str) -> list[IndexedEntry]:
    prefix = f"{path}/"
    rows = await conn.execute(
        select(*COLUMNS).where(
            LayerFile.layer_digest.in_(sorted(set(layers))), LayerFile.path.startswith(prefix, autoescape=True)
        )
    )
    # SQLite's LIKE ignores case: keep only what really is below ``path``
    return [entry for entry in map(from_row, rows) if entry.path.startswith(prefix)]


def _by_layer(rows: Iterable[IndexedEntry]) -> dict[str, list[IndexedEntry]]:
    layers: dict[str, dict[int, IndexedEntry]] = {}
    for entry in rows:
        layers.setdefault(entry.layer, {})[entry.seq] = entry
    return {layer: [own[seq] for seq in sorted(own)] for layer, own in layers.items()}


async def diff_trees(db: Database, before: Sequence[str], after: Sequence[str]) -> tuple[Tree, Tree]:
    """The merged trees of images ``before`` and ``after`` (layer digests, bottom first, every one indexed), each
    restricted to the paths where the two can differ (all of them when they share no bottom layer)."""
    shared = shared_prefix(before, after)
    async with db.read(consistent=True) as conn:
        if shared == 0:
            return (await _whole(conn, before), await _whole(conn, after))
        prefix = before[:shared]
        top: list[IndexedEntry] = []
        for digest in dict.fromkeys([*before[shared:], *after[shared:]]):
            top.extend(await all_rows(conn, digest))
        if any(entry.kind == Kind.OPAQUE and entry.path == "" for entry in top):
            # an opaque marker at the root empties the whole prefix: nothing is left to skip
            return (await _whole(conn, before), await _whole(conn, after))
        named = {entry.path for entry in top}
        at = await rows_at(conn, prefix, {part for path in named for part in chain_of(path)})
        lower = [entry for entries in at.values() for entry in entries]
        hidden = {entry.path for entry in lower if entry.is_dir} & {entry.path for entry in top if _hides(entry)}
        if len(hidden) > MAX_SUBTREES:
            return (await _whole(conn, before), await _whole(conn, after))
        read: set[str] = set()
        for path in sorted(hidden, key=len):  # a subtree inside one already read is not read again
            if not read.intersection(chain_of(path)):
                read.add(path)
                lower.extend(await _subtree(conn, prefix, path))
    rows = _by_layer([*lower, *top])
    return (
        tree_of(before, ((digest, rows.get(digest, [])) for digest in dict.fromkeys(before))),
        tree_of(after, ((digest, rows.get(digest, [])) for digest in dict.fromkeys(after))),
    )


async def _whole(conn: AsyncConnection, layers: Sequence[str]) -> Tree:
    return tree_of(layers, [(digest, await all_rows(conn, digest)) for digest in dict.fromkeys(layers)])
