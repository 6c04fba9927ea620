"""Rolling hour-bucket aggregates up into the windows and groups a usage query asks for."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from enum import StrEnum

from meterline.domain.aggregation import Aggregate
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, day_floor, hour_floor


class WindowSize(StrEnum):
    HOUR = "HOUR"
    DAY = "DAY"
    NONE = "NONE"


Window = tuple[int, int]
# (metric_id or customer, ..., window index, projected group) — callers choose the key shape.
GroupProjection = Callable[[str], tuple[str | None, ...] | None]


def windows(start_us: int, end_us: int, size: WindowSize) -> list[Window]:
    """Consecutive [start, end) windows covering the range; the first and last may be partial."""
    if size is WindowSize.NONE:
        return [(start_us, end_us)]
    step, floor = (US_PER_HOUR, hour_floor) if size is WindowSize.HOUR else (US_PER_DAY, day_floor)
    result: list[Window] = []
    cursor = start_us
    while cursor < end_us:
        boundary = min(floor(cursor) + step, end_us)
        result.append((cursor, boundary))
        cursor = boundary
    return result


def window_index(window_starts: list[int], hour_us: int) -> int:
    """Index of the window holding this hour bucket (buckets never straddle windows)."""
    return bisect.bisect_right(window_starts, hour_us) - 1


def rollup(
    rows: Iterable[tuple[str, int, str, Aggregate]],
    window_list: list[Window],
    project: GroupProjection,
) -> dict[tuple[str, int, tuple[str | None, ...]], Aggregate]:
    """Merge (owner, hour, group, aggregate) rows into (owner, window index, projected group)."""
    starts = [w[0] for w in window_list]
    result: dict[tuple[str, int, tuple[str | None, ...]], Aggregate] = {}
    for owner, hour_us, group_text, aggregate in rows:
        projected = project(group_text)
        if projected is None:
            continue
        index = window_index(starts, hour_us)
        if index < 0 or hour_us >= window_list[index][1]:
            continue
        key = (owner, index, projected)
        total = result.get(key)
        if total is None:
            total = result[key] = Aggregate()
        total.merge(aggregate)
    return result
