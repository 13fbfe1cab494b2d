"""The per-layer file index (``dockyard.layers``): one ``layer_indexes`` row per indexed layer blob (its build
state and claim) and one ``layer_files`` row per tar entry of the layer.

Keyed by the layer's digest, not by repository: layers are content-addressed and shared between images, so each
is indexed once. Both cascade from ``blobs``: when garbage collection deletes a blob, its index goes with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, UTCDateTime, utcnow


class LayerIndex(Base):
    """The index of one layer blob. ``state``: ``building`` (``builder`` holds the claim while
    ``heartbeat_at`` is fresh), ``ready`` or ``failed`` (the blob is not a readable tar; ``error`` says why)."""

    __tablename__ = "layer_indexes"

    digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    builder: Mapped[str] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    entries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # entries with unusable paths
    # entries whose name climbs above the root (``../``); the first such name
    escapes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escape_sample: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LayerFile(Base):
    """One tar entry of a layer, numbered by ``seq``. ``member`` is its position in the tar stream (a file is
    found again by reading the stream up to it), -1 for a directory the layer has entries under but no entry of
    its own (an implicit one: it never overrides the same directory of a lower layer). ``path`` is normalised (no
    leading ``/``, no ``.`` or ``..``; ``""`` is the root) and ``dir`` its parent. ``kind``: ``file``, ``dir``,
    ``symlink``, ``hardlink``, ``other``, ``whiteout`` (``path`` is what the ``.wh.`` entry hides) or ``opaque``
    (``path`` is the directory an ``.wh..wh..opq`` marker empties). ``sha256`` is a regular file's content hash
    (a hard link's: its target's); ``offset`` where its data starts in the uncompressed tar."""

    __tablename__ = "layer_files"

    layer_digest: Mapped[str] = mapped_column(ForeignKey("layer_indexes.digest", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    member: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    dir: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)
    mode: Mapped[int] = mapped_column(Integer)
    uid: Mapped[int] = mapped_column(BigInteger)
    gid: Mapped[int] = mapped_column(BigInteger)
    uname: Mapped[str] = mapped_column(String(255))
    gname: Mapped[str] = mapped_column(String(255))
    mtime: Mapped[int] = mapped_column(BigInteger)
    link: Mapped[str | None] = mapped_column(Text, nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    offset: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_layer_files_dir", "layer_digest", "dir"),
        Index("ix_layer_files_path", "layer_digest", "path"),
    )
