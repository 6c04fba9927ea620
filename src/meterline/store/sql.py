"""Small statement helpers that hide dialect differences: upserts, and the batch look-ups of many keys."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

import msgspec
from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    String,
    Table,
    any_,
    bindparam,
    cast,
    func,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from meterline.store.types import decimal_as_text

# column -> the SQL that sets it when the key exists, from the stored row's columns (qualified
# by the table's name) and `excluded.` (the row offered); a column not given is replaced.
Merges = tuple[tuple[str, str], ...]


def upsert(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], key: Sequence[str], merges: Merges = ()
) -> None:
    """Insert rows; where a row's key already exists, replace its other columns, or merge those
    that `merges` says how to."""
    if not rows:
        return
    columns = tuple(rows[0])
    if conn.dialect.name == "sqlite":
        _driver_upsert(conn, table, tuple(key), columns, rows, merges)
        return
    # PostgreSQL: SQLAlchemy sends an executemany as multi-row VALUES statements, which beats
    # the driver's statement per row.
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(key), columns, merges), list(rows))


def upsert_values(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
    key: tuple[str, ...],
    merges: Merges = (),
) -> None:
    """`upsert` of rows given as tuples of `columns`' values, already as the dialect binds them
    (`bound_decimal`): on SQLite, straight to the driver's executemany, with no dict, no bind
    processor and no copy per row (the evaluator writes two usage rows per customer a batch
    touches, so spread over many customers this was most of what an upsert cost)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        sql, _processors = _driver_upsert_plan(conn.dialect, table, key, columns, merges)
        conn.exec_driver_sql(sql, list(rows))
        return
    statement = _upsert_statement(conn.dialect.name, table, key, columns, merges)
    conn.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])


def bound_decimal(conn: Connection) -> Callable[[Decimal | None], Any]:
    """How an `ExactDecimal` value is bound on this connection's dialect (`upsert_values`)."""
    return decimal_as_text if conn.dialect.name == "sqlite" else _as_is


def _as_is(value: Decimal | None) -> Decimal | None:
    return value


def _driver_upsert(
    conn: Connection,
    table: Table,
    key: tuple[str, ...],
    columns: tuple[str, ...],
    rows: Sequence[dict[str, Any]],
    merges: Merges,
) -> None:
    """The upsert as the driver's own executemany of tuples: on the evaluator's hot path (usage
    aggregates, drafts), SQLAlchemy's parameter processing per row cost more than SQLite's insert.
    Values go through the columns' own bind processors, so they are stored exactly as before."""
    sql, processors = _driver_upsert_plan(conn.dialect, table, key, columns, merges)
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    params: list[Any] = [values(row) for row in rows]
    if processors:
        for i, row in enumerate(params):
            converted = list(row)
            for index, process in processors:
                converted[index] = process(converted[index])
            params[i] = tuple(converted)
    conn.exec_driver_sql(sql, params)


@lru_cache(maxsize=256)
def _driver_upsert_plan(
    dialect: Dialect, table: Table, key: tuple[str, ...], columns: tuple[str, ...], merges: Merges
) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The statement, and the bind processor of each column that has one (by position)."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    merged = dict(merges)
    updates = ", ".join(
        f"{quote(c)} = {merged.get(c, f'excluded.{quote(c)}')}" for c in columns if c not in key
    )
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    sql = (
        f"INSERT INTO {quote(table.name)} ({names}) VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT ({', '.join(quote(k) for k in key)}) {action}"
    )
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    return sql, tuple((i, process) for i, process in enumerate(processors) if process is not None)


@lru_cache(maxsize=256)
def _upsert_statement(
    dialect: str, table: Table, key: tuple[str, ...], columns: tuple[str, ...], merges: Merges = ()
) -> Any:
    # Built once per shape: `excluded` makes a fresh alias with a proxy per column on every call,
    # which cost more than the statement itself on the evaluator's hot path.
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    merged = dict(merges)
    return insert.on_conflict_do_update(
        index_elements=list(key),
        set_={c: text(merged[c]) if c in merged else insert.excluded[c] for c in columns if c not in key},
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


def among(conn: Connection, column: ColumnElement[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`, for the evaluator's batch reads of many customers at once.

    On SQLite the values travel as one JSON parameter, unpacked by `json_each`: the statement is
    the same whatever their number, where an IN list is expanded by SQLAlchemy on every execution,
    which cost as much as the look-up itself."""
    if conn.dialect.name != "sqlite":
        return column.in_(list(values))
    return column.in_(select(_json_each(values).c.value))


def keys_among(
    conn: Connection, columns: Sequence[ColumnElement[Any]], keys: Sequence[tuple[Any, ...]]
) -> ColumnElement[bool]:
    """`(columns...) IN keys` for composite keys, as `among` does for one column."""
    if conn.dialect.name != "sqlite":
        return tuple_(*columns).in_(list(keys))
    each = _json_each(keys)
    return tuple_(*columns).in_(
        # Cast to each column's type: without it SQLite would not use the index past the first
        # columns that compare as text.
        select(*(cast(func.json_extract(each.c.value, f"$[{i}]"), c.type) for i, c in enumerate(columns)))
    )


def among_bound(
    dialect: str, column: ColumnElement[Any], name: str, item_type: Any = String
) -> ColumnElement[bool]:
    """`column IN` the list bound as `name` (its value: `bound_list`), for statements built once
    and run on every request (reservation batches): `among` builds its clause anew each time, and
    building and keying the statement cost several times what SQLite took to run it. SQLite unpacks
    the list from one JSON parameter; PostgreSQL takes it as one array (`= ANY`), so the statement
    stays the same, and prepared, whatever the number of values."""
    if dialect == "sqlite":
        return column.in_(select(func.json_each(bindparam(name, type_=String)).table_valued("value").c.value))
    return column == any_(bindparam(name, type_=postgresql.ARRAY(item_type)))


def bound_list(conn: Connection, values: Sequence[Any]) -> Any:
    """The value to bind for an `among_bound` list."""
    return _encode_json(list(values)).decode() if conn.dialect.name == "sqlite" else list(values)


def _json_each(values: Sequence[Any]) -> Any:
    return func.json_each(bindparam(None, _encode_json(list(values)).decode())).table_valued("value")


_encode_json = msgspec.json.Encoder().encode


def chunks(values: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    """`values` in consecutive slices of at most `size` (statements with bounded IN lists)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


class greatest(GenericFunction[Any]):
    """The largest of its arguments, each evaluated once: `GREATEST` on PostgreSQL, the scalar
    `max` on SQLite (a CASE comparing two subqueries would run each of them twice)."""

    name = "greatest"
    inherit_cache = True


@compiles(greatest, "sqlite")
def _greatest_on_sqlite(element: greatest, compiler: Any, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"
