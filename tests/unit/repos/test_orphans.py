"""``repos.orphans.going_with``: what goes with the manifests a retention run deletes — an untagged index's
platforms (and an index's indexes), a deleted image's untagged referrers — and what stays: anything tagged, newer
than the cutoff, listed by an index that stays, or referring to a manifest that stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dockyard.repos.orphans import ManifestFacts, going_with

CUTOFF = datetime(2026, 12, 1, tzinfo=UTC)
OLD = CUTOFF - timedelta(days=3)
NEW = CUTOFF + timedelta(hours=1)


def facts(*rows: tuple[str, datetime, str | None, bool]) -> dict[str, ManifestFacts]:
    return {digest: ManifestFacts(digest, created, subject, tagged) for digest, created, subject, tagged in rows}


def test_an_untagged_index_takes_its_platforms_and_their_referrers() -> None:
    manifests = facts(
        ("index", OLD, None, False),
        ("amd64", OLD, None, False),
        ("arm64", OLD, None, False),
        ("sig-of-index", OLD, "index", False),
        ("sbom-of-arm64", OLD, "arm64", False),
    )
    listed_by = {"amd64": {"index"}, "arm64": {"index"}}
    assert going_with(["index"], manifests, listed_by, CUTOFF) == ["amd64", "arm64", "sig-of-index", "sbom-of-arm64"]


def test_a_nested_index_goes_level_by_level() -> None:
    manifests = facts(("outer", OLD, None, False), ("inner", OLD, None, False), ("leaf", OLD, None, False))
    listed_by = {"inner": {"outer"}, "leaf": {"inner"}}
    assert going_with(["outer"], manifests, listed_by, CUTOFF) == ["inner", "leaf"]


def test_what_something_else_keeps_stays() -> None:
    manifests = facts(
        ("index", OLD, None, False),
        ("tagged", OLD, None, True),  # a platform someone tagged
        ("fresh", NEW, None, False),  # younger than untagged_days
        ("shared", OLD, None, False),  # also listed by an index that stays
        ("other-index", OLD, None, True),
        ("sig-of-fresh", OLD, "fresh", False),  # its subject stays
        ("gone", OLD, None, False),
    )
    listed_by = {
        "tagged": {"index"},
        "fresh": {"index"},
        "shared": {"index", "other-index"},
        "gone": {"index"},
    }
    assert going_with(["index"], manifests, listed_by, CUTOFF) == ["gone"]


def test_two_deleted_indexes_sharing_a_platform_take_it_once() -> None:
    manifests = facts(("a", OLD, None, False), ("b", OLD, None, False), ("shared", OLD, None, False))
    assert going_with(["a", "b"], manifests, {"shared": {"a", "b"}}, CUTOFF) == ["shared"]
    assert going_with(["a"], manifests, {"shared": {"a", "b"}}, CUTOFF) == []  # b stays, and lists it
