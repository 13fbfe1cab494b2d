"""The merged filesystem: layers applied in order with whiteouts, opaque directories, replaced paths and
implicit directories — the whole tree (diffs) and the rows of one directory (listings) agree."""

from __future__ import annotations

import io
from collections.abc import Sequence

from dockyard.layers.diff import config_changes, config_values, file_changes
from dockyard.layers.merged import IndexedEntry, chain_of, find, merge, tree_of
from dockyard.layers.tarstream import TarEntry, scan
from tests.support.layers import E, layer


def rows(name: str, entries: Sequence[E]) -> list[IndexedEntry]:
    found: list[TarEntry] = list(scan(io.BytesIO(layer(entries))))
    return [
        IndexedEntry(
            name,
            e.seq,
            e.member,
            e.path,
            str(e.kind),
            e.size,
            e.mode,
            e.uid,
            e.gid,
            e.uname,
            e.gname,
            e.mtime,
            e.link,
            e.sha256,
        )
        for e in found
    ]


def image(*layers: Sequence[E]) -> tuple[list[str], dict[str, list[IndexedEntry]]]:
    names = [f"L{i}" for i in range(len(layers))]
    return names, {name: rows(name, entries) for name, entries in zip(names, layers, strict=True)}


def tree(*layers: Sequence[E]) -> dict[str, IndexedEntry]:
    names, found = image(*layers)
    return tree_of(names, found.items())


def listing(path: str, *layers: Sequence[E]) -> list[str] | None:
    """What a directory listing shows, from only the rows ``rows_for`` would read."""
    names, found = image(*layers)
    chain = set(chain_of(path))
    subset = {
        n: [r for r in rs if r.path in chain or (r.path.rpartition("/")[0] == path and r.path)]
        for n, rs in found.items()
    }
    node = find(merge(names, subset), path)
    if node is None or (node.entry is not None and not node.entry.is_dir):
        return None
    return sorted(name for name, child in node.children.items() if child.entry is not None)


BASE = [
    E("etc/", "dir", mode=0o755),
    E("etc/hello", data=b"v1"),
    E("etc/keep", data=b"k"),
    E("var/log/", "dir"),
    E("var/log/a", data=b"a"),
]


def test_upper_layers_replace_files_and_record_their_layer() -> None:
    merged = tree(BASE, [E("etc/hello", data=b"v2")])
    assert merged["etc/hello"].layer == "L1"
    assert merged["etc/keep"].layer == "L0"
    assert merged["etc"].layer == "L0"  # the implicit "etc" of L1 does not override the real directory


def test_whiteout_removes_a_file_and_a_whole_directory() -> None:
    merged = tree(BASE, [E("etc/.wh.keep"), E("var/.wh.log")])
    assert "etc/keep" not in merged
    assert "etc/hello" in merged
    assert not any(p.startswith("var/log") for p in merged)
    assert listing("etc", BASE, [E("etc/.wh.keep")]) == ["hello"]
    assert listing("var/log", BASE, [E("var/.wh.log")]) is None


def test_whiteout_and_new_entry_in_the_same_layer() -> None:
    merged = tree(BASE, [E("etc/.wh.hello"), E("etc/hello", data=b"new")])
    assert merged["etc/hello"].layer == "L1"


def test_opaque_directory_hides_only_lower_content() -> None:
    upper = [E("etc/", "dir"), E("etc/.wh..wh..opq"), E("etc/fresh", data=b"f")]
    merged = tree(BASE, upper)
    assert sorted(p for p in merged if p.startswith("etc/")) == ["etc/fresh"]
    assert listing("etc", BASE, upper) == ["fresh"]


def test_a_file_replacing_a_directory_takes_its_subtree() -> None:
    merged = tree(BASE, [E("var/log", data=b"now a file")])
    assert merged["var/log"].kind == "file"
    assert "var/log/a" not in merged
    assert listing("var/log", BASE, [E("var/log", data=b"x")]) is None


def test_a_directory_recreated_after_its_whiteout_is_empty_but_there() -> None:
    upper = [E("var/.wh.log"), E("var/log/b", data=b"b")]
    assert listing("var/log", BASE, upper) == ["b"]
    assert sorted(p for p in tree(BASE, upper) if p.startswith("var/log/")) == ["var/log/b"]


def test_listing_and_tree_agree_on_the_root() -> None:
    assert listing("", BASE, [E("opt/x", data=b"1")]) == ["etc", "opt", "var"]
    assert listing("nothing", BASE) is None


def test_symlinked_directory_is_not_a_directory() -> None:
    merged_listing = listing("lib/x", [E("lib", "symlink", link="usr/lib"), E("usr/lib/x", data=b"1")])
    assert merged_listing is None


def test_file_changes() -> None:
    before = tree(BASE)
    after = tree(BASE, [E("etc/hello", data=b"v2"), E("etc/.wh.keep"), E("new", data=b"n")])
    changes, added, removed, changed = file_changes(before, after)
    assert (added, removed, changed) == (1, 1, 1)
    by_path = {c.path: c for c in changes}
    assert by_path["/etc/hello"].change == "changed"
    assert "sha256" in by_path["/etc/hello"].fields
    assert by_path["/etc/keep"].change == "removed"
    assert by_path["/new"].change == "added"
    assert by_path["/etc/hello"].after is not None
    assert by_path["/etc/hello"].after.layer == "L1"
    limited, *_ = file_changes(before, after, limit=1)
    assert len(limited) == 1


def test_config_changes() -> None:
    a = config_values(b'{"config": {"Env": ["A=1"], "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}}, "User": ""}}')
    b = config_values(b'{"config": {"Env": ["A=2"], "Cmd": ["sh"], "Labels": {"x": "y"}, "User": "app"}}')
    changed = {c.field: (c.before, c.after) for c in config_changes(a, b)}
    assert changed == {
        "env": (["A=1"], ["A=2"]),
        "exposed_ports": (["80/tcp"], None),
        "labels": (None, {"x": "y"}),
        "user": (None, "app"),
    }
    assert config_values(b"not json") == {}
