"""Evaluator cursors: the last log position whose effects are committed.

The cursor moves by compare-and-set in the same transaction as the effects, so a batch applied
twice (a crash after commit, two evaluators racing) is refused, never double counted.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from meterline.domain.timeutil import now_us
from meterline.store.sql import insert_ignoring_duplicates
from meterline.store.tables import evaluator_cursors


class CursorMoved(Exception):
    """Another evaluator advanced the cursor first; this batch must be rolled back."""


def read_cursor(conn: Connection, name: str) -> int:
    insert_ignoring_duplicates(
        conn, evaluator_cursors, [{"name": name, "position": 0, "updated_at_us": now_us()}]
    )
    value = conn.execute(
        select(evaluator_cursors.c.position).where(evaluator_cursors.c.name == name)
    ).scalar()
    return int(value or 0)


def advance_cursor(conn: Connection, name: str, expected: int, new_position: int) -> None:
    result = conn.execute(
        update(evaluator_cursors)
        .where(evaluator_cursors.c.name == name, evaluator_cursors.c.position == expected)
        .values(position=new_position, updated_at_us=now_us())
    )
    if result.rowcount != 1:
        raise CursorMoved(f"cursor {name} is no longer at {expected}")


def peek_cursor(conn: Connection, name: str) -> int:
    """The cursor's position without creating it (for readers)."""
    value = conn.execute(
        select(evaluator_cursors.c.position).where(evaluator_cursors.c.name == name)
    ).scalar()
    return int(value or 0)
