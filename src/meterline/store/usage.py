"""Usage aggregates: per hour bucket and per billing period, for each (customer, metric, group)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, select, union_all

from meterline.domain.aggregation import Aggregate
from meterline.domain.periods import calendar_month
from meterline.domain.timeutil import month_bounds
from meterline.domain.usage_fold import UsageDeltas, months_of
from meterline.store import usage_journal
from meterline.store.sql import (
    IN_CHUNK,
    Merges,
    among,
    bound_decimal,
    chunks,
    grouped_by_customer,
    insert_ignoring_duplicates,
    upsert_values,
)
from meterline.store.tables import usage_hourly, usage_hourly_open, usage_monthly, usage_unique_values

# (customer_id, metric_id, bucket start, group values)
BucketKey = tuple[str, str, int, str]
KEY_CHUNK = 200


@dataclass(frozen=True, slots=True)
class UsageRow:
    customer_id: str
    metric_id: str
    bucket_us: int
    group_values: str
    aggregate: Aggregate


def add_folded(conn: Connection, deltas: UsageDeltas) -> None:
    """Add a folded batch's hour and month aggregates and its distinct values. A month's aggregate
    is often its one hour's own (`usage_fold.fold`): its values are bound once for both rows."""
    values = _AggregateValues(bound_decimal(conn))
    _merge_into(conn, usage_hourly, "hour_us", deltas.hourly, {}, values)
    _merge_into(conn, usage_monthly, "period_start_us", deltas.monthly, deltas.month_ends, values)
    add_unique_values(conn, deltas.unique_values)


def merge_journal(
    conn: Connection,
    batch: UsageDeltas | None = None,
    open_from_us: int | None = None,
    *,
    journaled: bool = True,
) -> int:
    """Merge every delta in the journal (`store.usage_journal`), and a batch's own if given, into
    the usage tables, in key order, and empty the journal: each row written once however many
    batches moved it. Hours from `open_from_us` on go to the open hours' table only (SQLite only:
    `seal_open_hours`), the others to `usage_hourly` and their months' rows. `journaled=False`:
    the caller knows the journal is empty (a hot batch's rows alone), so it is neither read nor
    emptied. Returns the hour rows written."""
    if not journaled:  # the batch's own deltas are all there is (nothing here changes them)
        tail = (
            usage_journal.Tail() if batch is None else usage_journal.Tail(batch.hourly, batch.unique_values)
        )
    else:
        tail = usage_journal.everything(conn)
        if batch is not None:
            for key, aggregate in batch.hourly.items():
                tail.add(key, aggregate)
            tail.unique_values |= batch.unique_values
    values = _AggregateValues(bound_decimal(conn))
    hourly, open_hours = _split_open(tail.hourly, open_from_us)
    # An open hour's usage reaches its month's row when the hour is sealed, not before.
    monthly, month_ends = months_of(hourly)
    _merge_into(conn, usage_hourly, "hour_us", hourly, {}, values)
    _merge_into(conn, usage_hourly_open, "hour_us", open_hours, {}, values)
    _merge_into(conn, usage_monthly, "period_start_us", monthly, month_ends, values)
    add_unique_values(conn, tail.unique_values)
    if journaled:
        usage_journal.clear(conn)
    return len(tail.hourly)


def _split_open(
    deltas: dict[BucketKey, Aggregate], open_from_us: int | None
) -> tuple[dict[BucketKey, Aggregate], dict[BucketKey, Aggregate]]:
    """The deltas of hours already sealed (or of every hour, none being open), and of open hours."""
    if open_from_us is None:
        return deltas, {}
    sealed: dict[BucketKey, Aggregate] = {}
    open_hours: dict[BucketKey, Aggregate] = {}
    for key, aggregate in deltas.items():
        (open_hours if key[2] >= open_from_us else sealed)[key] = aggregate
    return sealed, open_hours


def oldest_open_hour(conn: Connection) -> int | None:
    """The earliest hour with a row in the open hours' table (None: it is empty)."""
    found = conn.execute(select(func.min(usage_hourly_open.c.hour_us))).scalar_one()
    return None if found is None else int(found)


def seal_open_hours(conn: Connection, before_us: int, most_rows: int) -> int | None:
    """Move at most `most_rows` rows of the earliest open hour before `before_us` into
    `usage_hourly`, each added to its key's row there (a late event's, or one a batch that did not
    journal wrote), and to its month's row, in key order; returns the earliest open hour left. SQLite only: it is the only
    dialect whose engine writes open hours (`engine.usage_deferral`)."""
    hour = oldest_open_hour(conn)
    if hour is None or hour >= before_us:
        return hour
    table = usage_hourly_open.name
    bound = conn.exec_driver_sql(
        f"SELECT customer_id, metric_id, group_values FROM {table} WHERE hour_us = ? "
        "ORDER BY customer_id, metric_id, group_values LIMIT 1 OFFSET ?",
        (hour, most_rows - 1),
    ).first()
    where, params = "hour_us = ?", [hour]
    if bound is not None:  # more than `most_rows` rows in the hour: the first ones, up to it
        where += " AND (customer_id, metric_id, group_values) <= (?, ?, ?)"
        params.extend(bound)
    columns = ", ".join(("customer_id", "metric_id", "hour_us", "group_values", *_AGGREGATE_COLUMNS))
    updates = ", ".join(
        f"{c} = {merge}" for c, merge in _merges("sqlite", usage_hourly.name) if c != "folded_seq"
    )
    conn.exec_driver_sql(
        f"INSERT INTO {usage_hourly.name} ({columns}) SELECT {columns} FROM {table} WHERE {where} "
        f"ORDER BY customer_id, metric_id, group_values ON CONFLICT ({', '.join(_KEY['hour_us'])}) "
        f"DO UPDATE SET {updates}",
        tuple(params),
    )
    month = calendar_month(hour)
    month_columns = ", ".join(_MONTH_COLUMNS)
    month_updates = ", ".join(f"{c} = {merge}" for c, merge in _merges("sqlite", usage_monthly.name))
    conn.exec_driver_sql(
        f"INSERT INTO {usage_monthly.name} ({month_columns}) SELECT customer_id, metric_id, ?, group_values, ?, "
        f"{', '.join(_AGGREGATE_COLUMNS)}, folded_seq FROM {table} WHERE {where} "
        f"ORDER BY customer_id, metric_id, group_values ON CONFLICT ({', '.join(_KEY['period_start_us'])}) "
        f"DO UPDATE SET {month_updates}",
        (month.start_us, month.end_us, *params),
    )
    conn.exec_driver_sql(f"DELETE FROM {table} WHERE {where}", tuple(params))
    return oldest_open_hour(conn)


def add_hourly(conn: Connection, deltas: Mapping[BucketKey, Aggregate]) -> None:
    _merge_into(conn, usage_hourly, "hour_us", deltas, {}, _AggregateValues(bound_decimal(conn)))


def add_monthly(
    conn: Connection, deltas: Mapping[BucketKey, Aggregate], period_ends: Mapping[int, int]
) -> None:
    values = _AggregateValues(bound_decimal(conn))
    _merge_into(conn, usage_monthly, "period_start_us", deltas, period_ends, values)


def add_unique_values(conn: Connection, values: set[tuple[str, str, int, str, str]]) -> None:
    rows = [
        {"customer_id": c, "metric_id": m, "hour_us": h, "group_values": g, "value": v}
        for c, m, h, g, v in sorted(values)
    ]
    for chunk in chunks(rows, 5000):
        insert_ignoring_duplicates(conn, usage_unique_values, chunk)


def hourly_rows(
    conn: Connection, customer_ids: Sequence[str], metric_ids: Sequence[str], start_us: int, end_us: int
) -> Iterator[UsageRow]:
    """The hour rows of these customers and metrics in [start_us, end_us): the stored rows, the
    open hours' rows (`seal_open_hours`) and the journal's deltas added, key by key."""
    customers, metrics = list(customer_ids), list(metric_ids)
    params = {"customers": customers, "metrics": metrics, "start_us": start_us, "end_us": end_us}
    found: dict[BucketKey, Aggregate] = {}
    for row in conn.execute(_hour_rows_statement(), params).mappings():
        _add_row(
            found,
            (row["customer_id"], row["metric_id"], row["hour_us"], row["group_values"]),
            _aggregate(row),
        )
    wanted = set(metrics)
    for key, aggregate in usage_journal.tail_of(conn, customers).hourly.items():
        if key[1] in wanted and start_us <= key[2] < end_us:
            _add_row(found, key, aggregate)
    for key, aggregate in sorted(found.items(), key=_by_key):
        yield UsageRow(*key, aggregate)


@lru_cache(maxsize=1)
def _hour_rows_statement() -> Any:
    """The stored and the open hour rows of some customers and metrics in a window, in one
    statement (one round trip a read, as before the open hours), built once: a read of one
    customer cost a fifth more building two statements per call."""

    def rows_of(table: Table) -> Any:
        return select(*(table.c[c] for c in _HOUR_COLUMNS)).where(
            table.c.customer_id.in_(bindparam("customers", expanding=True)),
            table.c.metric_id.in_(bindparam("metrics", expanding=True)),
            table.c.hour_us >= bindparam("start_us"),
            table.c.hour_us < bindparam("end_us"),
        )

    return union_all(rows_of(usage_hourly), rows_of(usage_hourly_open))


def _add_row(found: dict[BucketKey, Aggregate], key: BucketKey, aggregate: Aggregate) -> None:
    present = found.get(key)
    if present is None:
        found[key] = aggregate
    else:
        present.merge(aggregate)


def unique_value_rows(
    conn: Connection, customer_ids: Sequence[str], metric_ids: Sequence[str], start_us: int, end_us: int
) -> Iterator[tuple[str, str, int, str, str]]:
    table = usage_unique_values
    query = select(
        table.c.customer_id, table.c.metric_id, table.c.hour_us, table.c.group_values, table.c.value
    ).where(
        table.c.customer_id.in_(list(customer_ids)),
        table.c.metric_id.in_(list(metric_ids)),
        table.c.hour_us >= start_us,
        table.c.hour_us < end_us,
    )
    stored = {(row[0], row[1], row[2], row[3], row[4]) for row in conn.execute(query)}
    metrics = set(metric_ids)
    pending = {
        value
        for value in usage_journal.tail_of(conn, customer_ids).unique_values
        if value[1] in metrics and start_us <= value[2] < end_us
    }
    yield from sorted(stored | pending)


def monthly_rows(conn: Connection, customer_id: str, period_start_us: int) -> list[UsageRow]:
    return monthly_rows_for(conn, [customer_id], period_start_us)[customer_id]


def monthly_rows_for(
    conn: Connection, customer_ids: Sequence[str], period_start_us: int
) -> dict[str, list[UsageRow]]:
    """The calendar month's rows of many customers, one statement per chunk, the journal's added."""

    def load(chunk: Sequence[str]) -> Iterator[tuple[str, UsageRow]]:
        query = select(usage_monthly).where(
            among(conn, usage_monthly.c.customer_id, chunk),
            usage_monthly.c.period_start_us == period_start_us,
        )
        return ((r["customer_id"], _period_row(r)) for r in conn.execute(query).mappings())

    stored = grouped_by_customer(customer_ids, load)
    month_end = month_bounds(period_start_us)[1]
    for customer_id, row in _open_rows(conn, customer_ids, period_start_us, month_end):
        _add_to(
            stored[customer_id],
            (customer_id, row.metric_id, period_start_us, row.group_values),
            row.aggregate,
        )
    tail = usage_journal.tail_of(conn, customer_ids)
    if tail.hourly:
        monthly, _ends = tail.monthly()
        for key, aggregate in sorted(monthly.items(), key=_by_key):
            if key[2] == period_start_us:
                _add_to(stored[key[0]], key, aggregate)
    return stored


def _open_rows(
    conn: Connection, customer_ids: Sequence[str], start_us: int, end_us: int
) -> Iterator[tuple[str, UsageRow]]:
    """The open hours' rows of these customers in [start_us, end_us): usage no month's row holds."""
    table = usage_hourly_open
    for chunk in chunks(sorted(set(customer_ids)), IN_CHUNK):
        query = select(table).where(
            among(conn, table.c.customer_id, chunk), table.c.hour_us >= start_us, table.c.hour_us < end_us
        )
        for r in conn.execute(query).mappings():
            yield (
                r["customer_id"],
                UsageRow(r["customer_id"], r["metric_id"], r["hour_us"], r["group_values"], _aggregate(r)),
            )


def _add_to(rows: list[UsageRow], key: BucketKey, aggregate: Aggregate) -> None:
    """A pending month delta added to a customer's stored rows (a copy: it may be shared)."""
    for row in rows:
        if (row.metric_id, row.group_values) == (key[1], key[3]):
            row.aggregate.merge(aggregate)
            return
    rows.append(UsageRow(*key, aggregate.copy()))


def _period_row(r: Any) -> UsageRow:
    return UsageRow(r["customer_id"], r["metric_id"], r["period_start_us"], r["group_values"], _aggregate(r))


class _AggregateValues:
    """An aggregate's column values as the dialect binds them, worked out once per aggregate."""

    def __init__(self, bound: Callable[[Decimal | None], Any]) -> None:
        self.bound = bound
        # id -> (the aggregate, so that its id names it while kept; its values)
        self._seen: dict[int, tuple[Aggregate, tuple[Any, ...]]] = {}

    def __call__(self, agg: Aggregate) -> tuple[Any, ...]:
        found = self._seen.get(id(agg))
        if found is not None:
            return found[1]
        bound = self.bound
        maximum = bound(agg.maximum)
        # One event's aggregate has its value as its maximum and latest, and as its total (which
        # writes the same but for a zero's sign): bound once.
        latest = maximum if agg.latest is agg.maximum else bound(agg.latest)
        if agg.count == 1 and agg.maximum is not None and agg.total == agg.maximum and agg.total:
            total = maximum
        else:
            total = bound(agg.total)
        values = (agg.count, total, maximum, latest, agg.latest_ts_us, agg.latest_seq)
        self._seen[id(agg)] = (agg, values)
        return values


def _merge_into(
    conn: Connection,
    table: Table,
    bucket_column: str,
    deltas: Mapping[BucketKey, Aggregate],
    extra_by_bucket: Mapping[int, int],
    values_of: _AggregateValues,
) -> None:
    """Add the deltas to the stored aggregates in the database: one upsert that merges as
    `Aggregate.merge` does (exact decimal sums on SQLite through meterline's own SQL functions,
    `store.db`), so no stored row is read back first.
    """
    monthly = "period_end_us" in table.c
    columns = (
        "customer_id",
        "metric_id",
        bucket_column,
        "group_values",
        *_AGGREGATE_COLUMNS,
        *(("period_end_us", "folded_seq") if monthly else ()),
        *(("folded_seq",) if table is usage_hourly_open else ()),
    )
    # In key order, so that concurrent writers lock rows in one order and cannot deadlock.
    if monthly:
        rows = [
            (*key, *values_of(agg), extra_by_bucket[key[2]], agg.folded_seq)
            for key, agg in sorted(deltas.items(), key=_by_key)
        ]
    elif table is usage_hourly_open:
        rows = [(*key, *values_of(agg), agg.folded_seq) for key, agg in sorted(deltas.items(), key=_by_key)]
    else:
        rows = [(*key, *values_of(agg)) for key, agg in sorted(deltas.items(), key=_by_key)]
    merges = _merges(conn.dialect.name, table.name)
    for row_chunk in chunks(rows, 2000):
        upsert_values(conn, table, columns, row_chunk, _KEY[bucket_column], merges)


def _by_key(item: tuple[BucketKey, Aggregate]) -> BucketKey:
    return item[0]


_AGGREGATE_COLUMNS = ("event_count", "total", "maximum", "latest", "latest_ts_us", "latest_seq")
_HOUR_COLUMNS = ("customer_id", "metric_id", "hour_us", "group_values", *_AGGREGATE_COLUMNS)
_MONTH_COLUMNS = (
    "customer_id",
    "metric_id",
    "period_start_us",
    "group_values",
    "period_end_us",
    *_AGGREGATE_COLUMNS,
    "folded_seq",
)
_KEY = {
    bucket: ("customer_id", "metric_id", bucket, "group_values") for bucket in ("hour_us", "period_start_us")
}


@lru_cache(maxsize=8)
def _merges(dialect: str, table: str) -> Merges:
    """How each aggregate column merges with the stored one (`Aggregate.merge`, in SQL)."""
    old = f"{table}."
    later = (
        f"(excluded.latest_ts_us > {old}latest_ts_us OR (excluded.latest_ts_us = {old}latest_ts_us"
        f" AND excluded.latest_seq > {old}latest_seq))"
    )
    if dialect == "sqlite":
        total = f"meterline_decimal_sum({old}total, excluded.total)"
        maximum = f"meterline_decimal_max({old}maximum, excluded.maximum)"
    else:
        total = f"{old}total + excluded.total"
        maximum = f"GREATEST({old}maximum, excluded.maximum)"  # NULLs are ignored
    return (
        ("event_count", f"{old}event_count + excluded.event_count"),
        ("total", total),
        ("maximum", maximum),
        # Every SET expression reads the stored row as it was, so the three agree.
        ("latest", f"CASE WHEN {later} THEN excluded.latest ELSE {old}latest END"),
        ("latest_ts_us", f"CASE WHEN {later} THEN excluded.latest_ts_us ELSE {old}latest_ts_us END"),
        ("latest_seq", f"CASE WHEN {later} THEN excluded.latest_seq ELSE {old}latest_seq END"),
        (
            "folded_seq",
            f"CASE WHEN excluded.folded_seq > {old}folded_seq THEN excluded.folded_seq ELSE {old}folded_seq END",
        ),
    )


def _aggregate(row: Any) -> Aggregate:
    return Aggregate(
        count=row["event_count"],
        total=row["total"],
        maximum=row["maximum"],
        latest=row["latest"],
        latest_ts_us=row["latest_ts_us"],
        latest_seq=row["latest_seq"],
        folded_seq=row.get("folded_seq", -1),
    )
