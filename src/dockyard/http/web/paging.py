"""Page numbers and the links between pages of a list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from dockyard.core.paging import Page

MAX_PAGE = 100_000


@dataclass(frozen=True, slots=True)
class Pager:
    number: int
    last: int
    previous: str | None
    next: str | None


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return min(max(int(raw), 1), MAX_PAGE) if raw.isdigit() else 1


def link(request: Request, **changes: Any) -> str:
    params = dict(request.query_params)
    params.update({k: str(v) for k, v in changes.items()})
    return f"{request.url.path}?{urlencode(params)}"


def pager(request: Request, result: Page[Any]) -> Pager:
    number = result.request.page
    last = max(1, -(-result.count // result.request.page_size))
    return Pager(
        number,
        last,
        link(request, page=number - 1) if number > 1 else None,
        link(request, page=number + 1) if result.has_next else None,
    )
