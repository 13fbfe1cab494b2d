"""Page requests and pages of results, as the Hub API paginates them (1-based ``page``, ``page_size`` ≤ 100)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from dockyard.errors import Invalid

T = TypeVar("T")
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    def __post_init__(self) -> None:
        if self.page < 1 or self.page > 1_000_000:
            raise Invalid("request", "page must be between 1 and 1000000", {"page": self.page})
        if self.page_size < 1 or self.page_size > MAX_PAGE_SIZE:
            raise Invalid("request", f"page_size must be between 1 and {MAX_PAGE_SIZE}", {"page_size": self.page_size})

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    count: int  # total over all pages
    request: PageRequest

    @property
    def has_next(self) -> bool:
        return self.request.offset + len(self.items) < self.count
