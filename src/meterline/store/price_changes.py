"""Instants inside a billing period where pricing changes: rates, product versions, overrides.

The engine splits a period at these points so that usage before and after a change is priced
by the terms in force at the time.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, or_, select

from meterline.store.tables import product_versions, rates


def change_points(conn: Connection, rate_card_id: str, start_us: int, end_us: int) -> set[int]:
    points: set[int] = set()
    rate_rows = conn.execute(
        select(rates.c.starting_at_us, rates.c.ending_before_us).where(
            rates.c.rate_card_id == rate_card_id,
            or_(
                rates.c.starting_at_us.between(start_us + 1, end_us - 1),
                rates.c.ending_before_us.between(start_us + 1, end_us - 1),
            ),
        )
    )
    for begin, finish in rate_rows:
        points.update(_inside((begin, finish), start_us, end_us))
    product_rows = conn.execute(
        select(product_versions.c.starting_at_us).where(
            product_versions.c.starting_at_us.between(start_us + 1, end_us - 1)
        )
    )
    points.update(p for (p,) in product_rows)
    return points


def _inside(values: Iterable[int | None], start_us: int, end_us: int) -> list[int]:
    return [v for v in values if v is not None and start_us < v < end_us]
