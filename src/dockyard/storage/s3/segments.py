"""Pure planning for the S3 driver: S3's part limits, the segment chain of an upload, where a reopened upload
continues, and the multipart parts a commit is built from. No I/O here (unit-tested without a bucket).

An upload is a chain of segments (see ``dockyard.storage.s3``): each object holds the upload's bytes from the
offset its key names. ``Piece`` describes such an object, or the first part of one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_PART = 5 * MiB
"""S3's minimum size of every multipart part but the last."""
MAX_PART = 5 * GiB
"""S3's maximum size of one part (and of one PUT or CopyObject)."""
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MiB
MAX_SEGMENT = 512 * MiB
_GROWTH_DIVISOR = 1024


def part_size_at(part_size: int, position: int) -> int:
    """Segment size for bytes at ``position``: grows past 8 GiB so that even a TiB blob fits S3's 10,000 parts."""
    return min(max(part_size, position // _GROWTH_DIVISOR), MAX_SEGMENT)


@dataclass(frozen=True, slots=True)
class Piece:
    """The first ``length`` bytes of object ``key`` (``size`` bytes long), at upload offset ``start``."""

    key: str
    start: int
    length: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.length

    def truncated(self, length: int) -> Piece:
        return Piece(self.key, self.start, length, self.size)


@dataclass(frozen=True, slots=True)
class UploadListing:
    """What the bucket holds for one upload: whether its marker exists, the chain from offset 0, and the keys of
    every other object under it (leftovers of interrupted requests)."""

    exists: bool
    chain: list[Piece]
    garbage: list[str]

    @property
    def stored(self) -> int:
        return self.chain[-1].end if self.chain else 0


def chain(segments: Sequence[Piece]) -> tuple[list[Piece], list[str]]:
    """The segments that continue each other from offset 0, and the keys of all others."""
    by_start = {segment.start: segment for segment in segments}
    linked: list[Piece] = []
    position = 0
    while (segment := by_start.get(position)) is not None and segment.length > 0:
        linked.append(segment)
        position = segment.end
    on_chain = {segment.key for segment in linked}
    return linked, [segment.key for segment in segments if segment.key not in on_chain]


def truncate(pieces: Sequence[Piece], size: int) -> list[Piece]:
    """The pieces holding bytes ``[0, size)``, the last one cut at ``size``."""
    kept: list[Piece] = []
    for segment in pieces:
        if segment.start >= size:
            break
        kept.append(segment.truncated(min(segment.length, size - segment.start)))
    return kept


@dataclass(frozen=True, slots=True)
class Reopen:
    """Where a request that appends at ``offset`` starts: the objects to delete now, and the stored pieces just
    before ``offset`` that its first segment rewrites together with the new bytes (``run``)."""

    drop: list[str]
    run: list[Piece]


def plan_reopen(listing: UploadListing, offset: int) -> Reopen:
    """Bytes past ``offset`` belong to a failed request: whole segments go now (so no new segment can chain into
    them); a segment cut by ``offset`` stays until the writer rewrites it, so an abort loses nothing. Trailing
    pieces under the part minimum are folded into the next segment written."""
    kept = truncate(listing.chain, offset)
    drop = listing.garbage + [s.key for s in listing.chain if s.start >= offset]
    run: list[Piece] = []
    if kept and kept[-1].length < kept[-1].size:
        run.append(kept.pop())
    while kept and kept[-1].size < MIN_PART:
        run.insert(0, kept.pop())
    return Reopen(drop, run)


def fold_run_on_close(run: Sequence[Piece], buffered: int) -> bool:
    """Whether the last write of a request folds the trailing pieces in: once they make a valid part with the
    buffered bytes, or when one of them must be cut short."""
    run_bytes = sum(piece.length for piece in run)
    dirty = any(piece.length < piece.size for piece in run)
    return dirty or run_bytes + buffered >= MIN_PART


@dataclass(frozen=True, slots=True)
class CopyPart:
    """A multipart part copied server-side from bytes ``[offset, offset + length)`` of one segment."""

    piece: Piece
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class DataPart:
    """A multipart part assembled in the process from small pieces (each part but the last is ≥ 5 MiB)."""

    pieces: tuple[Piece, ...]

    @property
    def length(self) -> int:
        return sum(piece.length for piece in self.pieces)


def plan_parts(pieces: Sequence[Piece]) -> list[CopyPart | DataPart]:
    """Multipart parts for ``pieces``: server-side copies of segments ≥ 5 MiB, the small rest read and re-sent."""
    plan: list[CopyPart | DataPart] = []
    pending: list[Piece] = []
    pending_bytes = 0
    for piece in pieces:
        if not pending and piece.length >= MIN_PART:
            count = math.ceil(piece.length / MAX_PART)
            step = math.ceil(piece.length / count)
            plan.extend(
                CopyPart(piece, offset, min(step, piece.length - offset)) for offset in range(0, piece.length, step)
            )
            continue
        pending.append(piece)
        pending_bytes += piece.length
        if pending_bytes >= MIN_PART:
            plan.append(DataPart(tuple(pending)))
            pending, pending_bytes = [], 0
    if pending:
        plan.append(DataPart(tuple(pending)))
    return plan
