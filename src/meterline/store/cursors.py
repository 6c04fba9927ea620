"""Log cursors: how far a reader of a log has applied it (the webhook fan-out over the outbox;
the evaluator's positions in the event log are per partition, `store/partitions.py`).

The cursor moves by compare-and-set in the same transaction as the effects, so a batch applied
twice (a crash after commit, two readers racing) is refused, never applied twice.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from meterline.domain.timeutil import now_us
from meterline.store.sql import insert_ignoring_duplicates
from meterline.store.tables import log_cursors


class CursorMoved(Exception):
    """Another reader advanced the cursor first; this batch must be rolled back."""


def ensure_cursor(conn: Connection, name: str) -> int:
    """The cursor's position, creating it at 0 on first use (so a writer's compare-and-set has a row)."""
    insert_ignoring_duplicates(conn, log_cursors, [{"name": name, "position": 0, "updated_at_us": now_us()}])
    return peek_cursor(conn, name)


def lock_cursor(conn: Connection, name: str) -> int:
    """The cursor's position, created if need be and locked until the caller's transaction ends.

    The lock serializes the cursor's writers across processes, and the value read under it is
    current (SQLite ignores FOR UPDATE: its writers are serialized anyway).
    """
    ensure_cursor(conn, name)
    locked = select(log_cursors.c.position).where(log_cursors.c.name == name).with_for_update()
    return int(conn.execute(locked).scalar_one())


def advance_cursor(conn: Connection, name: str, expected: int, new_position: int) -> None:
    result = conn.execute(
        update(log_cursors)
        .where(log_cursors.c.name == name, log_cursors.c.position == expected)
        .values(position=new_position, updated_at_us=now_us())
    )
    if result.rowcount != 1:
        raise CursorMoved(f"cursor {name} is no longer at {expected}")


def peek_cursor(conn: Connection, name: str) -> int:
    """The cursor's position without creating it (for readers)."""
    value = conn.execute(select(log_cursors.c.position).where(log_cursors.c.name == name)).scalar()
    return int(value or 0)
