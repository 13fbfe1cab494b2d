"""The tag diff page, ``/r/<ns>/<repo>/diff?from=&to=[&platform=]``: two tags or digests of one repository side by
side — config changes, layers shared, added and removed, and the files added, removed or changed (kind, size,
mode, owner, link target, content hash) — from ``ImageFiles.diff`` and its per-layer indexes. Without both
references it shows only the form.

Authorized as a pull (``ImageFiles``): a repository the visitor may not pull is a 404. A reference that is not
in the repository is said so on the form (still a 404 status), never anything about a hidden repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from dockyard.errors import NotFound
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.preview import mode_string
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.layers.diff import ImageDiff
from dockyard.layers.merged import FileEntry

MAX_SHOWN = 2_000  # file changes listed on the page; the counts cover all of them
MAX_REFERENCE = 200
MAX_VALUE = 2_000


@dataclass(frozen=True, slots=True)
class ConfigRow:
    field: str
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class FileRow:
    path: str
    change: str
    href: str  # the path's page in the image that has it ("to", or "from" for a removed path)
    kind: str
    size: str
    mode: str
    fields: str
    sha256: str


def _value(value: Any) -> str:
    if value is None:
        return "—"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text[:MAX_VALUE]


def _pair(before: str, after: str) -> str:
    return after if before == after else f"{before} → {after}"


def _size(entry: FileEntry | None) -> str:
    return str(entry.size) if entry is not None and entry.kind in ("file", "hardlink") else ""


def file_rows(namespace: str, name: str, result: ImageDiff, before: str, after: str, platform: str) -> list[FileRow]:
    query = f"?platform={quote(platform, safe='/')}" if platform else ""
    rows = []
    for change in result.files:
        old, new = change.before, change.after
        shown = new or old
        assert shown is not None
        reference = before if new is None else after
        href = f"/r/{quote(namespace)}/{quote(name)}/tags/{quote(reference, safe=':')}/files{quote(change.path)}{query}"
        rows.append(
            FileRow(
                path=change.path,
                change=change.change,
                href=href,
                kind=_pair(old.kind, new.kind) if old and new else shown.kind,
                size=_pair(_size(old), _size(new)) if old and new else _size(shown),
                mode=_pair(mode_string(old), mode_string(new)) if old and new else mode_string(shown),
                fields=", ".join(change.fields),
                sha256=(new.sha256 if new else old.sha256 if old else None) or "",
            )
        )
    return rows


async def diff_page(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    namespace, name = request.path_params["ns"], request.path_params["repo"]
    view = await services.repositories.get(current.principal, namespace, name)
    before = request.query_params.get("from", "").strip()[:MAX_REFERENCE]
    after = request.query_params.get("to", "").strip()[:MAX_REFERENCE]
    platform = request.query_params.get("platform", "").strip()[:100]
    result: ImageDiff | None = None
    error = ""
    status = 200
    if before and after:
        try:
            result = await services.files.diff(
                current.principal, namespace, name, before, after, platform=platform or None, limit=MAX_SHOWN
            )
        except NotFound as exc:
            if exc.subject not in ("tag", "manifest"):
                raise
            error, status = f"“{before}” or “{after}” names no {exc.subject} of this repository.", 404
    return page(
        request,
        current,
        "diff.html",
        status=status,
        title=f"Compare · {view.full_name}",
        repo=view,
        home=home_of(namespace, name),
        pull=pull_ref(request, view),
        tab="diff",
        before=before,
        after=after,
        platform=platform,
        error=error,
        result=result,
        config=[ConfigRow(c.field, _value(c.before), _value(c.after)) for c in result.config] if result else [],
        files=file_rows(namespace, name, result, before, after, platform) if result else [],
        shown=MAX_SHOWN,
    )
