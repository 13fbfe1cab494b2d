"""The S3 driver's pure planning: part sizes, the segment chain, reopening an upload, the multipart plan. No bucket
(and no moto): these are the decisions the driver's integration tests exercise through a real S3 server."""

from __future__ import annotations

from dockyard.storage.s3 import S3BlobStore
from dockyard.storage.s3.segments import (
    DEFAULT_PART_SIZE,
    MAX_PART,
    MAX_PARTS,
    MIN_PART,
    CopyPart,
    DataPart,
    Piece,
    UploadListing,
    chain,
    fold_run_on_close,
    part_size_at,
    plan_parts,
    plan_reopen,
    truncate,
)

MiB = 1024 * 1024
GiB = 1024 * MiB


def piece(start: int, size: int, length: int | None = None) -> Piece:
    return Piece(f"s/{start}", start, size if length is None else length, size)


def test_part_size_grows_for_huge_uploads() -> None:
    assert part_size_at(DEFAULT_PART_SIZE, 0) == DEFAULT_PART_SIZE
    assert part_size_at(DEFAULT_PART_SIZE, 8 * GiB) == DEFAULT_PART_SIZE
    assert part_size_at(DEFAULT_PART_SIZE, 64 * GiB) == 64 * MiB
    assert part_size_at(DEFAULT_PART_SIZE, 4096 * GiB) == 512 * MiB  # capped
    # Segments grow with the offset, so even a 1 TiB blob needs far fewer than 10,000 parts.
    position, parts = 0, 0
    while position < 1024 * GiB:
        position += part_size_at(DEFAULT_PART_SIZE, position)
        parts += 1
    assert parts < MAX_PARTS
    store = S3BlobStore("my-bucket", part_size=16 * MiB)
    assert store.part_size_at(0) == 16 * MiB


def test_chain_ignores_leftovers() -> None:
    linked, garbage = chain([piece(0, 10), piece(10, 5), piece(12, 3), piece(20, 1)])
    assert [p.start for p in linked] == [0, 10]
    assert sorted(garbage) == ["s/12", "s/20"]
    # An empty segment ends the chain (it could never be continued).
    linked, garbage = chain([piece(0, 0), piece(0 + 1, 4)])
    assert (linked, garbage) == ([], ["s/0", "s/1"])
    assert UploadListing(True, [piece(0, 10), piece(10, 5)], []).stored == 15
    assert UploadListing(True, [], []).stored == 0


def test_truncate_cuts_the_last_piece() -> None:
    pieces = [piece(0, 10), piece(10, 5)]
    assert truncate(pieces, 15) == pieces
    assert truncate(pieces, 12) == [piece(0, 10), piece(10, 5, 2)]
    assert truncate(pieces, 10) == [piece(0, 10)]
    assert truncate(pieces, 0) == []


def test_reopen_drops_past_offset_and_folds_small_tail() -> None:
    big = 6 * MiB
    segments = [piece(0, big), piece(big, MiB), piece(big + MiB, MiB)]
    listing = UploadListing(True, segments, ["s/leftover"])
    # At the end: nothing dropped but leftovers; the two small pieces are rewritten with the next bytes.
    reopen = plan_reopen(listing, big + 2 * MiB)
    assert reopen.drop == ["s/leftover"]
    assert reopen.run == segments[1:]
    # Inside the last piece: it is cut (rewritten later, not deleted now), the small piece before it joins the run.
    reopen = plan_reopen(listing, big + MiB + 10)
    assert reopen.drop == ["s/leftover"]
    assert reopen.run == [segments[1], piece(big + MiB, MiB, 10)]
    # At a piece boundary: the segments from the offset on are dropped now.
    reopen = plan_reopen(listing, big + MiB)
    assert reopen.drop == ["s/leftover", segments[2].key]
    assert reopen.run == [segments[1]]
    # Inside a big segment: only the cut segment is in the run; the pieces after it are dropped.
    reopen = plan_reopen(listing, MiB)
    assert reopen.drop == ["s/leftover", segments[1].key, segments[2].key]
    assert reopen.run == [piece(0, big, MiB)]
    # At 0: everything goes.
    reopen = plan_reopen(listing, 0)
    assert reopen.drop == ["s/leftover", *(s.key for s in segments)]
    assert reopen.run == []


def test_close_folds_the_run_once_it_makes_a_part() -> None:
    assert not fold_run_on_close([piece(0, MiB)], MiB)
    assert fold_run_on_close([piece(0, MiB)], MIN_PART - MiB)
    assert fold_run_on_close([piece(0, MiB, 10)], 1)  # a cut piece must be rewritten
    assert not fold_run_on_close([], 1)


def test_plan_copies_big_segments_and_resends_small_pieces() -> None:
    big, small = 8 * MiB, MiB
    plan = plan_parts([piece(0, big), piece(big, big), piece(2 * big, small), piece(2 * big + small, small)])
    assert [type(p) for p in plan] == [CopyPart, CopyPart, DataPart]
    assert plan[2].length == 2 * small
    # Small pieces followed by a big segment (never written so, but handled): sent as one part of ≥ 5 MiB.
    plan = plan_parts([piece(0, small), piece(small, big), piece(small + big, big)])
    assert [type(p) for p in plan] == [DataPart, CopyPart]
    assert all(p.length >= MIN_PART for p in plan[:-1])
    assert plan_parts([]) == []


def test_plan_splits_segments_larger_than_a_part() -> None:
    huge = piece(0, 2 * MAX_PART + 3)
    plan = plan_parts([huge])
    assert all(isinstance(p, CopyPart) and p.piece == huge for p in plan)
    copies = [p for p in plan if isinstance(p, CopyPart)]
    assert len(copies) == 3
    assert all(p.length <= MAX_PART for p in copies)
    assert [p.offset for p in copies] == [0, copies[0].length, 2 * copies[0].length]
    assert sum(p.length for p in copies) == huge.length
