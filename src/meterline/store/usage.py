"""Usage aggregates: per hour bucket and per billing period, for each (customer, metric, group)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, select

from meterline.domain.aggregation import Aggregate
from meterline.store.sql import (
    Merges,
    among,
    bound_decimal,
    chunks,
    grouped_by_customer,
    insert_ignoring_duplicates,
    upsert_values,
)
from meterline.store.tables import usage_hourly, usage_monthly, usage_unique_values

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


def add_hourly(conn: Connection, deltas: Mapping[BucketKey, Aggregate]) -> None:
    _merge_into(conn, usage_hourly, "hour_us", deltas, {})


def add_monthly(
    conn: Connection, deltas: Mapping[BucketKey, Aggregate], period_ends: Mapping[int, int]
) -> None:
    _merge_into(conn, usage_monthly, "period_start_us", deltas, period_ends)


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
    table = usage_hourly
    query = select(table).where(
        table.c.customer_id.in_(list(customer_ids)),
        table.c.metric_id.in_(list(metric_ids)),
        table.c.hour_us >= start_us,
        table.c.hour_us < end_us,
    )
    for row in conn.execute(query).mappings():
        yield UsageRow(
            row["customer_id"], row["metric_id"], row["hour_us"], row["group_values"], _aggregate(row)
        )


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
    for row in conn.execute(query):
        yield row[0], row[1], row[2], row[3], row[4]


def monthly_rows(conn: Connection, customer_id: str, period_start_us: int) -> list[UsageRow]:
    rows = conn.execute(
        select(usage_monthly).where(
            usage_monthly.c.customer_id == customer_id, usage_monthly.c.period_start_us == period_start_us
        )
    ).mappings()
    return [_period_row(r) for r in rows]


def monthly_rows_for(
    conn: Connection, customer_ids: Sequence[str], period_start_us: int
) -> dict[str, list[UsageRow]]:
    """`monthly_rows` of many customers, one statement per chunk."""

    def load(chunk: Sequence[str]) -> Iterator[tuple[str, UsageRow]]:
        query = select(usage_monthly).where(
            among(conn, usage_monthly.c.customer_id, chunk),
            usage_monthly.c.period_start_us == period_start_us,
        )
        return ((r["customer_id"], _period_row(r)) for r in conn.execute(query).mappings())

    return grouped_by_customer(customer_ids, load)


def _period_row(r: Any) -> UsageRow:
    return UsageRow(r["customer_id"], r["metric_id"], r["period_start_us"], r["group_values"], _aggregate(r))


def _merge_into(
    conn: Connection,
    table: Table,
    bucket_column: str,
    deltas: Mapping[BucketKey, Aggregate],
    extra_by_bucket: Mapping[int, int],
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
    )
    bound = bound_decimal(conn)
    rows = []
    # In key order, so that concurrent writers lock rows in one order and cannot deadlock.
    for key in sorted(deltas):
        agg = deltas[key]
        values = (
            *key,
            agg.count,
            bound(agg.total),
            bound(agg.maximum),
            bound(agg.latest),
            agg.latest_ts_us,
            agg.latest_seq,
        )
        rows.append((*values, extra_by_bucket[key[2]], agg.folded_seq) if monthly else values)
    merges = _merges(conn.dialect.name, table.name)
    for row_chunk in chunks(rows, 2000):
        upsert_values(conn, table, columns, row_chunk, _KEY[bucket_column], merges)


_AGGREGATE_COLUMNS = ("event_count", "total", "maximum", "latest", "latest_ts_us", "latest_seq")
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
