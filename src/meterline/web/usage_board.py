"""The usage dashboard: each billable metric's usage per group, over the current calendar month
and the ones before it, read from the monthly aggregates (UNIQUE metrics from their distinct
values). Group keys and values are shown by the names `bm_group_key_overrides` gives them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Connection

from meterline.api.dashboard_capability import GroupNames
from meterline.domain.aggregation import Aggregate
from meterline.domain.metrics import AggregationType, decode_group
from meterline.domain.periods import Period, calendar_month
from meterline.store import billable_metrics, usage

MONTHS_SHOWN = 6
NO_GROUP = "All usage"


@dataclass(slots=True)
class MetricUsage:
    metric_id: str
    name: str
    months: list[Period]
    # group label -> one value per month (None: no usage that month)
    series: dict[str, list[Decimal | None]] = field(default_factory=dict)


def months_until(now_us: int, count: int = MONTHS_SHOWN) -> list[Period]:
    """The calendar month holding now and the `count - 1` before it, oldest first."""
    found = [calendar_month(now_us)]
    while len(found) < count:
        found.append(calendar_month(found[-1].start_us - 1))
    return found[::-1]


def usage_by_metric(
    conn: Connection, customer_id: str, names: list[GroupNames], now_us: int
) -> list[MetricUsage]:
    months = months_until(now_us)
    cells: dict[str, dict[str, dict[int, Aggregate]]] = defaultdict(lambda: defaultdict(dict))
    for index, month in enumerate(months):
        for row in usage.monthly_rows(conn, customer_id, month.start_us):
            cells[row.metric_id][row.group_values][index] = row.aggregate
    metrics = billable_metrics.list_metrics(
        conn, ids=sorted(cells), include_archived=True, after_id=None, limit=None
    )
    _add_distinct_values(
        conn, customer_id, [m.id for m in metrics if m.aggregation_type == "UNIQUE"], months, cells
    )
    found = []
    for metric in sorted(metrics, key=lambda m: (m.name, m.id)):
        aggregation = AggregationType(metric.aggregation_type)
        board = MetricUsage(metric.id, metric.name, months)
        for group_text, per_month in sorted(cells[metric.id].items()):
            label = group_label(group_text, names)
            values = [per_month[i].value(aggregation) if i in per_month else None for i in range(len(months))]
            board.series[label] = values
        found.append(board)
    return found


def _add_distinct_values(
    conn: Connection,
    customer_id: str,
    metric_ids: list[str],
    months: list[Period],
    cells: dict[str, dict[str, dict[int, Aggregate]]],
) -> None:
    """UNIQUE metrics count distinct values over the month: their monthly rows hold no set."""
    if not metric_ids:
        return
    for metric_id in metric_ids:
        cells[metric_id].clear()
    rows = usage.unique_value_rows(conn, [customer_id], metric_ids, months[0].start_us, months[-1].end_us)
    for _customer, metric_id, hour_us, group_text, value in rows:
        index = next(i for i, m in enumerate(months) if m.contains(hour_us))
        cell = cells[metric_id][group_text].setdefault(index, Aggregate())
        cell.distinct.add(value)


def group_label(group_text: str, names: list[GroupNames]) -> str:
    """`{"region": "eu"}` shown as `Region: Europe` with the overrides, else `region: eu`."""
    by_key = {n.key: n for n in names}
    parts = []
    for key, value in sorted(decode_group(group_text).items()):
        override = by_key.get(key)
        key_name = override.display_name if override and override.display_name else key
        shown = "(none)" if value is None else (override.values.get(value, value) if override else value)
        parts.append(f"{key_name}: {shown}")
    return ", ".join(parts) or NO_GROUP
