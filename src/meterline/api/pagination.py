"""Opaque cursors for Metronome-style pagination: `next_page` in, `next_page` out."""

from __future__ import annotations

import base64
import json
from typing import Any

from meterline.domain.errors import InvalidInput


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str | None) -> Any:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("next_page: is not a cursor this server issued") from None


def page_limit(limit: int | None, maximum: int) -> int:
    if limit is None:
        return maximum
    if not 1 <= limit <= maximum:
        raise InvalidInput(f"limit: must be between 1 and {maximum}")
    return limit


def page_of(items: list[Any], limit: int, key: Any) -> tuple[list[Any], str | None]:
    """Given up to limit+1 items, return the page and the cursor for the next one (or None)."""
    if len(items) <= limit:
        return items, None
    page = items[:limit]
    return page, encode_cursor(key(page[-1]))
