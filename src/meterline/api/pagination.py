"""Pagination for every list endpoint: one page-size rule, and cursors only this server issues
(`api.cursors`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fastapi import Depends

from meterline.api.cursors import CursorCodec
from meterline.api.state import AppState, app_state
from meterline.domain.errors import InvalidInput

P = TypeVar("P")  # a list's position: the sort key of the last item of a page
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Page(Generic[P]):
    """One page asked of a list: how many items, and after which position."""

    size: int
    after: P | None
    list_name: str
    codec: CursorCodec

    def cut(self, found: list[R], position: Callable[[R], P]) -> tuple[list[R], str | None]:
        """Given up to size+1 items, the page and the cursor of the next one (None: the last)."""
        if len(found) <= self.size:
            return found, None
        page = found[: self.size]
        return page, self.cursor(position(page[-1]))

    def cursor(self, position: P) -> str:
        return self.codec.encode(self.list_name, position)


def page_request(
    state: AppState,
    list_name: str,
    position_type: type[P],
    *,
    limit: int | None,
    token: str | None,
    default_size: int | None = None,
    max_size: int | None = None,
    cursor_field: str = "next_page",
) -> Page[P]:
    """The page a request asks for: `limit` within 1..max_size (the server's max_page_size unless
    the list's own range is smaller), and the position its cursor holds."""
    maximum = min(max_size or state.settings.max_page_size, state.settings.max_page_size)
    size = min(default_size or maximum, maximum) if limit is None else limit
    if not 1 <= size <= maximum:
        raise InvalidInput(f"limit: must be between 1 and {maximum}")
    return page_at(state, list_name, position_type, token=token, size=size, cursor_field=cursor_field)


def page_at(
    state: AppState,
    list_name: str,
    position_type: type[P],
    *,
    token: str | None,
    size: int,
    cursor_field: str = "next_page",
) -> Page[P]:
    """A page of a size the list sets itself (no `limit`), after its cursor's position."""
    after = state.cursors.decode(list_name, token, position_type, cursor_field) if token else None
    return Page(size, after, list_name, state.cursors)


def paged(list_name: str, position_type: type[P]) -> Callable[..., Page[P]]:
    """A dependency for lists that take `limit` and `next_page` in the query string."""

    def dependency(
        state: AppState = Depends(app_state), limit: int | None = None, next_page: str | None = None
    ) -> Page[P]:
        return page_request(state, list_name, position_type, limit=limit, token=next_page)

    return dependency
