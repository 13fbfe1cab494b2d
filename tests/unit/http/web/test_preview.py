"""The filesystem browser's pure helpers: modes as ``ls -l`` writes them, owners, binary detection, highlighted
previews (escaped whatever the file holds), the capped read that closes its stream, symlink targets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from dockyard.http.web.files import symlink_target
from dockyard.http.web.preview import is_binary, mode_string, owner, read_capped, render
from dockyard.layers.merged import FileEntry


def entry(kind: str = "file", mode: int = 0o644, uname: str = "", gname: str = "") -> FileEntry:
    return FileEntry("/etc/x", "x", kind, 3, mode, 1000, 50, uname, gname, 0, None, None, None)


@pytest.mark.parametrize(
    ("kind", "mode", "shown"),
    [
        ("file", 0o644, "-rw-r--r--"),
        ("dir", 0o755, "drwxr-xr-x"),
        ("symlink", 0o777, "lrwxrwxrwx"),
        ("file", 0o4755, "-rwsr-xr-x"),
        ("dir", 0o1777, "drwxrwxrwt"),
        ("other", 0o600, "?rw-------"),
    ],
)
def test_mode_string(kind: str, mode: int, shown: str) -> None:
    assert mode_string(entry(kind, mode)) == shown


def test_owner_prefers_names() -> None:
    assert owner(entry()) == "1000:50"
    assert owner(entry(uname="app", gname="staff")) == "app:staff"


def test_binary_detection() -> None:
    assert is_binary(b"\x7fELF\x00\x01")
    assert is_binary(b"\xff\xfe\xfa plain")
    assert not is_binary("héllo wörld\n".encode())
    assert not is_binary("ab€".encode()[:-1])  # a character cut at the end of what was read


def test_render_escapes_and_highlights() -> None:
    payload = b"<script>alert(1)</script><img src=x onerror=alert(2)>"
    for name in ("evil.html", "evil.txt"):
        shown = render(name, payload)
        assert shown.html is not None
        assert "<script" not in shown.html
        assert "<img" not in shown.html
        assert "&lt;" in shown.html
        assert "style=" not in shown.html
    assert "&lt;script&gt;alert(1)" in str(render("evil.txt", payload).html)
    python = render("app.py", b"def f():\n    return 1\n")
    assert python.language == "Python"
    assert '<span class="k">def</span>' in str(python.html)
    assert render("notes.unknownext", b"plain\n").language == "Text only"
    binary = render("x.bin", b"\x00\x01")
    assert binary.html is None
    assert "binary" in binary.reason


def test_read_capped_stops_and_closes() -> None:
    closed = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            for _ in range(100):
                yield b"x" * 1000
        finally:
            closed.append(True)

    # In a thread of its own: a Playwright test of the same run may hold this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        kept = pool.submit(asyncio.run, read_capped(chunks(), limit=2500)).result()
    assert kept == b"x" * 2500
    assert closed == [True]


@pytest.mark.parametrize(
    ("path", "link", "target"),
    [("/bin/sh", "busybox", "/bin/busybox"), ("/a/b", "../../../etc/x", "/etc/x"), ("/a/b", "/abs", "/abs")],
)
def test_symlink_target(path: str, link: str, target: str) -> None:
    assert symlink_target(path, link) == target
