"""Ids typed by hand: every command that takes an id (of a token, webhook, delivery, build, build rule, trusted key
or identity) takes it whole or as a unique start of it, as git does for commits — tables fold long ids, and
nobody types 36 characters. ``unique_start`` picks the one id of the candidates the caller may see."""

from __future__ import annotations

from collections.abc import Iterable

from dockyard.errors import Invalid, NotFound, Subject

MIN_PREFIX = 4


def unique_start(
    subject: Subject, given: str, candidates: Iterable[str], *, label: str | None = None, minimum: int = MIN_PREFIX
) -> str:
    """The candidate equal to ``given`` (case and surrounding blanks ignored), else the only one starting with it.
    Errors name the resource as ``label`` (default: ``subject``): ``Invalid`` for a start shorter than ``minimum``
    characters or shared by several ids, ``NotFound`` when none matches."""
    what = label or subject.replace("_", " ")
    wanted = given.strip().lower()
    ids = list(candidates)
    for candidate in ids:
        if candidate.lower() == wanted:
            return candidate
    if len(wanted) < minimum:
        raise Invalid(subject, f"give the {what} id or at least {minimum} of its first characters", {"id": wanted[:64]})
    matches = [candidate for candidate in ids if candidate.lower().startswith(wanted)]
    if len(matches) > 1:
        raise Invalid(subject, f"several {what} ids start so: give more of it", {"id": wanted[:64]})
    if not matches:
        raise NotFound(subject, f"{what} not found", {"id": wanted[:64]})
    return matches[0]
