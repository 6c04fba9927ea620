"""Usage queries: POST /v1/usage and POST /v1/usage/groups, read from hour-bucket aggregates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import Field, field_validator
from sqlalchemy import Connection

from meterline.api.exact_body import ExactDecimalRoute
from meterline.api.pagination import Page, page_at, paged
from meterline.api.responses import ExactJSONResponse
from meterline.api.routes.common import StrictModel
from meterline.api.state import AppState, app_state
from meterline.domain.aggregation import Aggregate
from meterline.domain.errors import InvalidInput
from meterline.domain.metrics import AggregationType, decode_group
from meterline.domain.periods import default_billing_period
from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339, now_us, to_us
from meterline.domain.usage_windows import Window, WindowSize, rollup, windows
from meterline.store import billable_metrics, customers, usage
from meterline.store.billable_metrics import MetricRecord

router = APIRouter(route_class=ExactDecimalRoute)
ROWS_PER_PAGE = 1000
MAX_WINDOWS = 10_000  # a query over more windows than this is refused rather than left to run for minutes
MAX_GROUP_VALUES = 200


class GroupBy(StrictModel):
    key: str = Field(min_length=1)
    values: list[str] | None = Field(default=None, max_length=MAX_GROUP_VALUES)


class MetricSelection(StrictModel):
    id: str
    group_by: GroupBy | None = None


class UsageQuery(StrictModel):
    starting_on: datetime
    ending_before: datetime
    window_size: WindowSize
    customer_ids: list[str] | None = None
    billable_metrics: list[MetricSelection] | None = None

    @field_validator("window_size", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class UsageGroupsQuery(StrictModel):
    customer_id: str
    billable_metric_id: str
    window_size: WindowSize
    starting_on: datetime | None = None
    ending_before: datetime | None = None
    current_period: bool | None = None
    group_by: GroupBy | None = None
    group_key: list[str] | None = None
    group_filters: dict[str, list[str]] | None = None

    @field_validator("window_size", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


@router.post("/v1/usage")
def list_usage(
    body: UsageQuery, state: AppState = Depends(app_state), next_page: str | None = None
) -> ExactJSONResponse:
    start_us, end_us = _range(body.starting_on, body.ending_before)
    window_list = _windows(start_us, end_us, body.window_size)
    with state.db.read() as conn:
        selections = _selections(conn, body.billable_metrics)
        # A page holds about ROWS_PER_PAGE rows: as many customers as fit, in id order.
        per_customer = max(1, ROWS_PER_PAGE // max(1, len(selections) * len(window_list)))
        asked = page_at(state, "usage", str, token=next_page, size=per_customer)
        found = customers.active_customer_page(conn, asked.after, asked.size + 1, body.customer_ids)
        page_ids, cursor = asked.cut(found, lambda customer_id: customer_id)
        data = [
            row
            for metric, group_by in selections
            for row in _usage_rows(conn, metric, group_by, page_ids, window_list)
        ]
    data.sort(key=lambda r: (r["customer_id"], r["billable_metric_id"], r["start_timestamp"]))
    return ExactJSONResponse({"data": data, "next_page": cursor})


@router.post("/v1/usage/groups")
def list_usage_groups(
    body: UsageGroupsQuery,
    state: AppState = Depends(app_state),
    asked: Page[int] = Depends(paged("usage_groups", int)),
) -> ExactJSONResponse:
    with state.db.read() as conn:
        customers.get_customer(conn, body.customer_id)
        metric = billable_metrics.get_metric(conn, body.billable_metric_id)
        start_us, end_us = _groups_range(body)
        window_list = _windows(start_us, end_us, body.window_size)
        keys, filters = _group_keys(body, metric)
        totals = rollup(
            _series(conn, metric, [body.customer_id], start_us, end_us),
            window_list,
            lambda text: _project(text, keys, filters),
        )
    rows = _group_rows(metric, totals, window_list, keys)
    offset = asked.after or 0  # the rows are computed whole, then paged by position
    page, cursor = asked.cut(rows[offset : offset + asked.size + 1], lambda _row: offset + asked.size)
    return ExactJSONResponse({"data": page, "next_page": cursor})


def _usage_rows(
    conn: Connection,
    metric: MetricRecord,
    group_by: GroupBy | None,
    customer_ids: Sequence[str],
    window_list: list[Window],
) -> Iterator[dict[str, Any]]:
    if not customer_ids:
        return
    start_us, end_us = window_list[0][0], window_list[-1][1]
    aggregation = AggregationType(metric.aggregation_type)
    series = list(_series(conn, metric, customer_ids, start_us, end_us))
    totals = rollup(series, window_list, lambda _text: ())
    groups = None
    if group_by is not None:
        _require_dimension(metric, group_by.key, "billable_metrics.group_by.key")
        wanted = set(group_by.values) if group_by.values is not None else None
        groups = rollup(series, window_list, lambda text: _project(text, [group_by.key], None))
    for customer_id in customer_ids:
        for index, (w_start, w_end) in enumerate(window_list):
            row: dict[str, Any] = {
                "customer_id": customer_id,
                "billable_metric_id": metric.id,
                "billable_metric_name": metric.name,
                "start_timestamp": format_rfc3339(w_start),
                "end_timestamp": format_rfc3339(w_end),
                "value": _value(totals.get((customer_id, index, ())), aggregation),
            }
            if groups is not None:
                row["groups"] = _groups_for(groups, customer_id, index, aggregation, wanted)
            yield row


def _groups_for(
    groups: dict[tuple[str, int, tuple[str | None, ...]], Aggregate],
    customer_id: str,
    index: int,
    aggregation: AggregationType,
    wanted: set[str] | None,
) -> dict[str, Decimal | None]:
    found = {
        key[2][0]: _value(agg, aggregation)
        for key, agg in groups.items()
        if key[0] == customer_id and key[1] == index and key[2][0] is not None
    }
    if wanted is not None:
        # Metronome: null (not zero) says no usage matched a requested group value.
        return {v: found.get(v) for v in sorted(wanted)}
    return dict(sorted(found.items())[:MAX_GROUP_VALUES])  # type: ignore[arg-type]


def _group_rows(
    metric: MetricRecord,
    totals: dict[tuple[str, int, tuple[str | None, ...]], Aggregate],
    window_list: list[Window],
    keys: list[str],
) -> list[dict[str, Any]]:
    aggregation = AggregationType(metric.aggregation_type)
    rows: list[dict[str, Any]] = []
    for index, (w_start, w_end) in enumerate(window_list):
        in_window = sorted(
            ((key[2], agg) for key, agg in totals.items() if key[1] == index),
            key=lambda item: tuple("" if v is None else v for v in item[0]),
        )
        if not keys:
            in_window = in_window or [((), Aggregate())]
        for projected, agg in in_window:
            row: dict[str, Any] = {
                "starting_on": format_rfc3339(w_start),
                "ending_before": format_rfc3339(w_end),
                "group_key": keys[0] if len(keys) == 1 else None,
                "group_value": projected[0] if len(keys) == 1 else None,
                "value": _value(agg, aggregation),
            }
            if keys:
                row["group"] = {k: v for k, v in zip(keys, projected, strict=True) if v is not None}
            rows.append(row)
    return rows


def _series(
    conn: Connection, metric: MetricRecord, customer_ids: Sequence[str], start_us: int, end_us: int
) -> Iterator[tuple[str, int, str, Aggregate]]:
    """(customer, hour, group, aggregate) rows of one metric; UNIQUE reads its distinct values."""
    if metric.aggregation_type == AggregationType.UNIQUE:
        for customer_id, _m, hour_us, group_text, value in usage.unique_value_rows(
            conn, customer_ids, [metric.id], start_us, end_us
        ):
            yield customer_id, hour_us, group_text, Aggregate(distinct={value})
        return
    for row in usage.hourly_rows(conn, customer_ids, [metric.id], start_us, end_us):
        yield row.customer_id, row.bucket_us, row.group_values, row.aggregate


def _project(
    group_text: str, keys: list[str], filters: dict[str, set[str]] | None
) -> tuple[str | None, ...] | None:
    values = decode_group(group_text)
    if filters and any(values.get(k) not in allowed for k, allowed in filters.items()):
        return None
    return tuple(values.get(k) for k in keys)


def _value(aggregate: Aggregate | None, aggregation: AggregationType) -> Decimal | None:
    return (aggregate or Aggregate()).value(aggregation)


def _selections(
    conn: Connection, selected: list[MetricSelection] | None
) -> list[tuple[MetricRecord, GroupBy | None]]:
    if selected is None:
        active = billable_metrics.list_metrics(conn, include_archived=False, after_id=None, limit=None)
        return [(m, None) for m in active]
    return [(billable_metrics.get_metric(conn, s.id), s.group_by) for s in selected]


def _group_keys(body: UsageGroupsQuery, metric: MetricRecord) -> tuple[list[str], dict[str, set[str]] | None]:
    keys = list(body.group_key or ([body.group_by.key] if body.group_by else []))
    for key in keys:
        _require_dimension(metric, key, "group_key" if body.group_key else "group_by.key")
    filters = {k: set(v) for k, v in (body.group_filters or {}).items()}
    for key in filters:
        _require_dimension(metric, key, "group_filters")
    if body.group_by and body.group_by.values is not None:
        filters[body.group_by.key] = set(body.group_by.values)
    return keys, filters or None


def _require_dimension(metric: MetricRecord, key: str, field: str) -> None:
    dimensions = {k for compound in metric.group_keys for k in compound}
    if key not in dimensions:
        raise InvalidInput(f"{field}: {key!r} is not a group key of billable metric {metric.id}")


def _windows(start_us: int, end_us: int, size: WindowSize) -> list[Window]:
    step = {WindowSize.HOUR: US_PER_HOUR, WindowSize.DAY: 24 * US_PER_HOUR}.get(size)
    if step is not None and (end_us - start_us) // step > MAX_WINDOWS:
        raise InvalidInput(
            f"ending_before: the range holds more than {MAX_WINDOWS} {size.value} windows; "
            "narrow it or use a larger window_size"
        )
    return windows(start_us, end_us, size)


def _range(starting_on: datetime, ending_before: datetime) -> tuple[int, int]:
    for name, moment in (("starting_on", starting_on), ("ending_before", ending_before)):
        if moment.tzinfo is None:
            raise InvalidInput(f"{name}: must include a UTC offset or Z")
    start_us, end_us = to_us(starting_on), to_us(ending_before)
    if end_us <= start_us:
        raise InvalidInput("ending_before: must be after starting_on")
    for name, value in (("starting_on", start_us), ("ending_before", end_us)):
        if value % US_PER_HOUR:
            raise InvalidInput(f"{name}: must fall on an hour boundary (usage is kept per hour)")
    return start_us, end_us


def _groups_range(body: UsageGroupsQuery) -> tuple[int, int]:
    if body.current_period or (body.starting_on is None and body.ending_before is None):
        period = default_billing_period(now_us())
        return period.start_us, period.end_us
    if body.starting_on is None or body.ending_before is None:
        raise InvalidInput("starting_on: starting_on and ending_before go together (or set current_period)")
    return _range(body.starting_on, body.ending_before)
