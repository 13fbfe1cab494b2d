"""What the filesystem browser shows of a file: its mode as ``ls -l`` writes it, its owner, and a text preview —
read from the start of the file up to ``MAX_PREVIEW`` bytes, refused for binary content, syntax highlighted on
the server by Pygments (CSS classes only, no inline style: the pages' CSP allows none).

Pygments escapes every character of the text it formats (``<``, ``>``, ``&``, quotes), so its output is safe
HTML whatever the file holds; a file's name only picks the lexer.
"""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.util import ClassNotFound

from dockyard.layers.merged import FileEntry

MAX_PREVIEW = 256 * 1024
_SNIFF = 8192
_KIND_CHAR = {"dir": "d", "symlink": "l", "hardlink": "-", "file": "-", "other": "?"}
_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)


def mode_string(entry: FileEntry) -> str:
    """``drwxr-xr-x`` style: the kind, then the permission bits with setuid, setgid and sticky."""
    text = stat.filemode(entry.mode & 0o7777)  # kind char "?" for bits without a type: replaced below
    return _KIND_CHAR.get(entry.kind, "?") + text[1:]


def owner(entry: FileEntry) -> str:
    return f"{entry.uname or entry.uid}:{entry.gname or entry.gid}"


@dataclass(frozen=True, slots=True)
class Preview:
    """``html`` the highlighted text, or None with ``reason`` (too large, binary, not a regular file)."""

    html: Markup | None
    reason: str
    language: str = ""


def is_binary(head: bytes) -> bool:
    """A NUL byte, or bytes that are not UTF-8 (a multi-byte character cut at the end of ``head`` is fine)."""
    if b"\0" in head[:_SNIFF]:
        return True
    try:
        head[:_SNIFF].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head[:_SNIFF]) - 3
    return False


def _lexer(name: str, text: str) -> Lexer:
    try:
        return get_lexer_for_filename(name, text[:_SNIFF], stripnl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False)


def render(name: str, content: bytes) -> Preview:
    """The highlighted preview of ``content`` (a whole file of at most ``MAX_PREVIEW`` bytes)."""
    if is_binary(content):
        return Preview(None, "This looks like a binary file; it is not previewed.")
    text = content.decode("utf-8", "replace")
    lexer = _lexer(name, text)
    html = highlight(text, lexer, _FORMATTER)
    return Preview(Markup(html), "", lexer.name)  # noqa: S704  # Pygments escapes all of the text


async def read_capped(chunks: AsyncIterator[bytes], limit: int = MAX_PREVIEW) -> bytes:
    """At most ``limit`` bytes of ``chunks``; the stream is closed after (never read further)."""
    kept = bytearray()
    try:
        async for chunk in chunks:
            kept += chunk[: limit - len(kept)]
            if len(kept) >= limit:
                break
    finally:
        closer = getattr(chunks, "aclose", None)
        if closer is not None:
            await closer()
    return bytes(kept)
