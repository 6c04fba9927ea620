"""A customer's usage over a pricing interval, per metric and group, as pricing reads it.

An interval that is exactly a calendar month (what the evaluator keys its monthly aggregates
by) reads those rows: one row per group, whatever the volume. Any other
interval (a contract starting mid-month, a non-monthly schedule, a rate change mid-period)
merges the hour buckets it covers, which is exact because every aggregate but UNIQUE composes,
and UNIQUE reads its distinct values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from meterline.domain.aggregation import Aggregate
from meterline.domain.metrics import AggregationType, decode_group
from meterline.domain.periods import calendar_month
from meterline.store import usage

GroupedUsage = dict[str, list[tuple[dict[str, str | None], Aggregate]]]


class MonthlyRows:
    """Stored monthly aggregates of one evaluator batch's customers, each month read once for all
    of them (one statement instead of one per customer)."""

    def __init__(self, conn: Connection, customer_ids: Sequence[str]):
        self.conn = conn
        self.customer_ids = list(customer_ids)
        self._known = set(self.customer_ids)
        self._by_period: dict[int, dict[str, list[usage.UsageRow]]] = {}

    def rows(self, customer_id: str, period_start_us: int) -> list[usage.UsageRow]:
        if customer_id not in self._known:
            return usage.monthly_rows(self.conn, customer_id, period_start_us)
        if period_start_us not in self._by_period:
            self._by_period[period_start_us] = usage.monthly_rows_for(
                self.conn, self.customer_ids, period_start_us
            )
        return self._by_period[period_start_us][customer_id]


def usage_by_group(
    conn: Connection,
    customer_id: str,
    metrics: Mapping[str, AggregationType],
    start_us: int,
    end_us: int,
    periods: MonthlyRows | None = None,
) -> GroupedUsage:
    if not metrics:
        return {}
    merged: dict[tuple[str, str], Aggregate] = {}
    unique_ids = [m for m, kind in metrics.items() if kind is AggregationType.UNIQUE]
    other_ids = [m for m in metrics if m not in unique_ids]
    for metric_id, group, aggregate in _rows(conn, customer_id, other_ids, start_us, end_us, periods):
        _merge(merged, (metric_id, group), aggregate)
    if unique_ids:
        for _c, metric_id, _h, group, value in usage.unique_value_rows(
            conn, [customer_id], unique_ids, start_us, end_us
        ):
            _merge(merged, (metric_id, group), Aggregate(distinct={value}))
    grouped: GroupedUsage = {}
    for (metric_id, group), aggregate in merged.items():
        grouped.setdefault(metric_id, []).append((decode_group(group), aggregate))
    return grouped


def _rows(
    conn: Connection,
    customer_id: str,
    metric_ids: list[str],
    start_us: int,
    end_us: int,
    periods: MonthlyRows | None,
) -> list[tuple[str, str, Aggregate]]:
    if not metric_ids:
        return []
    period = calendar_month(start_us)
    wanted = set(metric_ids)
    if (period.start_us, period.end_us) == (start_us, end_us):
        found = (
            periods.rows(customer_id, start_us)
            if periods
            else usage.monthly_rows(conn, customer_id, start_us)
        )
        return [(row.metric_id, row.group_values, row.aggregate) for row in found if row.metric_id in wanted]
    return [
        (row.metric_id, row.group_values, row.aggregate)
        for row in usage.hourly_rows(conn, [customer_id], metric_ids, start_us, end_us)
    ]


def _merge(merged: dict[tuple[str, str], Aggregate], key: tuple[str, str], aggregate: Aggregate) -> None:
    total = merged.get(key)
    if total is None:
        merged[key] = total = Aggregate()
    total.merge(aggregate)
