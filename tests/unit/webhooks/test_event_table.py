"""The event table is the one list of events and formats: the docs, the payload builders and the event names agree
with it."""

from __future__ import annotations

import re

from dockyard.events import outbox
from dockyard.webhooks import events as ev
from dockyard.webhooks.event_table import ALL_FORMATS, EVENT_TABLE, EVENT_TYPES, format_supports, selectable_formats
from dockyard.webhooks.payloads import _DISTRIBUTION_ACTIONS, FORMATS
from dockyard.webhooks.snapshots import PAYLOAD_FORMATS
from tests.support.server import REPO_ROOT

DOCS = (REPO_ROOT / "docs" / "webhooks.md").read_text()


def _section(heading: str) -> str:
    start = DOCS.index(f"\n## {heading}\n")
    end = DOCS.find("\n## ", start + 1)
    return DOCS[start : end if end != -1 else None]


def _docs_events() -> dict[str, tuple[str, str | None, str]]:
    """event → (status, outbox type or None, formats) as the Events table of docs/webhooks.md has them."""
    rows: dict[str, tuple[str, str | None, str]] = {}
    for line in _section("Events").splitlines():
        if not line.startswith("| `"):
            continue
        names, status, _when, source, formats = (cell.strip() for cell in line.strip("|").split(" | "))
        for name in re.findall(r"`([a-z_]+)`", names):
            rows[name] = (status, source.strip("`") if source != "—" else None, formats)
    return rows


def _formats_cell(formats: frozenset[str]) -> str:
    if formats == ALL_FORMATS:
        return "all"
    missing = sorted(ALL_FORMATS - formats)
    return "all but " + ", ".join(f"`{name}`" for name in missing)


def test_docs_events_table_is_the_event_table() -> None:
    assert _docs_events() == {e.name: (e.status, e.source, _formats_cell(e.formats)) for e in EVENT_TABLE}


def test_docs_payload_formats_are_the_table_formats() -> None:
    assert tuple(re.findall(r"^### `([a-z]+)`", _section("Payload formats"), re.M)) == (
        "dockerhub",
        "dockyard",
        "cloudevents",
        "distribution",
    )
    assert set(FORMATS) == ALL_FORMATS


def test_names_and_formats_derive_from_the_table() -> None:
    assert set(EVENT_TYPES) == ev.WEBHOOK_EVENTS
    assert {e.name for e in EVENT_TABLE if e.status == "live"} == ev.EMITTED_EVENTS
    assert {e.name for e in EVENT_TABLE if e.status == "reserved"} == ev.RESERVED_EVENTS
    assert PAYLOAD_FORMATS == selectable_formats() == ("dockerhub", "cloudevents", "dockyard")
    assert {e.name for e in EVENT_TABLE if "distribution" in e.formats} == set(_DISTRIBUTION_ACTIONS)
    assert all(e.source is None or e.source in outbox.EVENT_TYPES for e in EVENT_TABLE)
    assert ev.webhook_event_for(outbox.MANIFEST_PUSHED) == ev.PUSH  # signature_added is picked out, not mapped
    assert not format_supports("xml", ev.PUSH)
    assert not format_supports("dockyard", "nonsense")
