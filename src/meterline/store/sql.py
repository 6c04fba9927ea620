"""Small statement helpers that hide the dialect differences of upserts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: Sequence[str]) -> None:
    """Insert rows, replacing the non-key columns of rows whose key already exists."""
    if not rows:
        return
    insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    columns = [c for c in rows[0] if c not in key]
    statement = insert.on_conflict_do_update(
        index_elements=list(key), set_={c: insert.excluded[c] for c in columns}
    )
    conn.execute(statement, list(rows))


def insert_ignoring_duplicates(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    conn.execute(insert.on_conflict_do_nothing(), list(rows))


def chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
