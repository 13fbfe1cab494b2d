"""``diff_trees`` reads only what two images can differ in, and finds exactly the differences that merging both
images whole finds: random layer stacks (files, directories, symlinks, whiteouts of files and of directories,
opaque markers, a file replacing a directory and back) on a shared base, on the test backend's database."""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import insert

from dockyard.db.engine import Database
from dockyard.layers.diff import file_changes
from dockyard.layers.diff_trees import diff_trees, shared_prefix
from dockyard.layers.index import READY, entry_values
from dockyard.layers.merged import IndexedEntry, all_rows, tree_of
from dockyard.layers.tarstream import scan
from dockyard.models import Blob, LayerFile, LayerIndex
from tests.support.jobs import new_database
from tests.support.layers import E, layer
from tests.support.oci import sha256

DIRS = ["a", "a/b", "a/b/c", "d", "d/e", "Z"]
NAMES = ["x", "y", "A"]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with new_database(tmp_path) as database:
        yield database


async def stored(db: Database, entries: list[E], known: set[str] | None = None) -> str:
    data = layer(entries)
    digest = sha256(data)
    if known is not None:
        if digest in known:
            return digest
        known.add(digest)
    rows = [entry_values(digest, entry) for entry in scan(io.BytesIO(data))]
    async with db.write() as conn:
        await conn.execute(insert(Blob).values(digest=digest, size=len(data)))
        await conn.execute(
            insert(LayerIndex).values(digest=digest, state=READY, builder="test", entries=len(rows), skipped=0)
        )
        if rows:
            await conn.execute(insert(LayerFile), rows)
    return digest


def random_layer(rng: random.Random, serial: int) -> list[E]:
    entries: list[E] = []
    for _ in range(rng.randint(1, 7)):
        where = rng.choice(["", *DIRS])
        name = f"{where}/{rng.choice([*NAMES, 'b', 'e'])}".lstrip("/")
        roll = rng.random()
        if roll < 0.35:
            entries.append(E(name, data=f"{serial}:{rng.randint(0, 2)}".encode()))
        elif roll < 0.5:
            entries.append(E(rng.choice(DIRS) + "/", "dir", mode=rng.choice([0o755, 0o700])))
        elif roll < 0.6:
            entries.append(E(name, "symlink", link=rng.choice(["x", "../y", "/a/b"])))
        elif roll < 0.8:
            hidden = rng.choice([*DIRS, name])
            entries.append(E(f"{hidden.rpartition('/')[0]}/.wh.{hidden.rpartition('/')[2]}".lstrip("/")))
        elif roll < 0.9:
            entries.append(E(f"{rng.choice(DIRS)}/.wh..wh..opq"))
        else:
            entries.append(E(rng.choice(DIRS), data=b"a file where a directory was"))
    return entries


async def whole(db: Database, layers: Sequence[str]) -> dict[str, IndexedEntry]:
    async with db.read() as conn:
        return tree_of(layers, [(d, await all_rows(conn, d)) for d in dict.fromkeys(layers)])


async def test_restricted_trees_find_every_difference_the_whole_trees_do(db: Database) -> None:
    rng = random.Random(1414)
    serial = 0
    known: set[str] = set()

    async def new_layer(entries: list[E] | None = None) -> str:
        nonlocal serial
        serial += 1
        return await stored(db, entries if entries is not None else random_layer(rng, serial), known)

    base_entries = [E(f"{d}/", "dir") for d in DIRS] + [E(f"{d}/{n}", data=d.encode()) for d in DIRS for n in NAMES]
    compared = 0
    for _ in range(60):
        base = [await new_layer(base_entries), *[await new_layer() for _ in range(rng.randint(0, 2))]]
        before = [*base, *[await new_layer() for _ in range(rng.randint(0, 2))]]
        after = [*base, *[await new_layer() for _ in range(rng.randint(0, 3))]]
        if rng.random() < 0.2:
            after.append(before[-1])  # a layer of the other image, above a different one
        old, new = await diff_trees(db, before, after)
        expected = file_changes(await whole(db, before), await whole(db, after))
        assert file_changes(old, new) == expected, (before, after)
        compared += 1
        assert len(old) <= len(await whole(db, before))
    assert compared == 60


async def test_only_the_paths_the_top_layers_touch_are_read(db: Database) -> None:
    base = await stored(db, [E(f"dir{i}/file{j}", data=b"x") for i in range(20) for j in range(20)])
    top = await stored(db, [E("dir3/file4", data=b"changed"), E("dir5/.wh.file6"), E("new/file", data=b"n")])
    old, new = await diff_trees(db, [base], [base, top])
    assert set(old) == {"dir3", "dir3/file4", "dir5", "dir5/file6"}
    assert set(new) == {"dir3", "dir3/file4", "dir5", "new", "new/file"}
    changes, added, removed, changed = file_changes(old, new)
    assert (added, removed, changed) == (2, 1, 1)
    assert [c.path for c in changes] == ["/dir3/file4", "/dir5/file6", "/new", "/new/file"]


def test_shared_prefix() -> None:
    assert shared_prefix(["a", "b", "c"], ["a", "b", "d"]) == 2
    assert shared_prefix(["a"], ["b", "a"]) == 0
    assert shared_prefix([], ["a"]) == 0
    assert shared_prefix(["a", "b"], ["a", "b"]) == 2
