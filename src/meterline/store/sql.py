"""Small statement helpers that hide the dialect differences of upserts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: Sequence[str]) -> None:
    """Insert rows, replacing the non-key columns of rows whose key already exists."""
    if not rows:
        return
    statement = _upsert_statement(conn.dialect.name, table, tuple(key), tuple(rows[0]))
    conn.execute(statement, list(rows))


@lru_cache(maxsize=256)
def _upsert_statement(dialect: str, table: Table, key: tuple[str, ...], columns: tuple[str, ...]) -> Any:
    # Built once per shape: `excluded` makes a fresh alias with a proxy per column on every call,
    # which cost more than the statement itself on the evaluator's hot path.
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return insert.on_conflict_do_update(
        index_elements=list(key), set_={c: insert.excluded[c] for c in columns if c not in key}
    )


def insert_ignoring_duplicates(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
    conn.execute(insert.on_conflict_do_nothing(), list(rows))


T = TypeVar("T")

# Values per `IN (...)` list: well under every engine's limit on bound parameters.
IN_CHUNK = 500


def grouped_by_customer(
    customer_ids: Sequence[str], load: Callable[[Sequence[str]], Iterable[tuple[str, T]]]
) -> dict[str, list[T]]:
    """What `load` finds for many customers, one statement per chunk of ids, listed under each
    customer (every id is a key, perhaps of an empty list): the evaluator's batch reads."""
    found: dict[str, list[T]] = {c: [] for c in customer_ids}
    for chunk in chunks(customer_ids, IN_CHUNK):
        for customer_id, item in load(chunk):
            found[customer_id].append(item)
    return found


def chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
