"""Folding a batch of events into per-bucket usage deltas: the evaluator's pure core."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meterline.domain.aggregation import Aggregate
from meterline.domain.metrics import MetricRules
from meterline.domain.periods import Period, calendar_month
from meterline.domain.timeutil import hour_floor

BucketKey = tuple[str, str, int, str]  # (customer_id, metric_id, bucket start, group values)


@dataclass(frozen=True, slots=True)
class CountableEvent:
    seq: int
    customer_id: str
    event_type: str
    timestamp_us: int
    properties: Mapping[str, Any]


@dataclass(slots=True)
class UsageDeltas:
    hourly: dict[BucketKey, Aggregate] = field(default_factory=dict)
    monthly: dict[BucketKey, Aggregate] = field(default_factory=dict)  # by calendar month
    month_ends: dict[int, int] = field(default_factory=dict)
    unique_values: set[tuple[str, str, int, str, str]] = field(default_factory=set)
    unmatched_seqs: list[int] = field(default_factory=list)
    customers_touched: set[str] = field(default_factory=set)
    # (customer id, metric id) -> how much the batch moved it: what its positive values added and
    # its negative ones removed (one per event for a distinct value), and the number of events
    # (`domain.spend_bounds`).
    movements: dict[tuple[str, str], Movement] = field(default_factory=dict)


@dataclass(slots=True)
class Movement:
    added: Decimal = Decimal(0)
    removed: Decimal = Decimal(0)
    events: int = 0


def counted_by(
    metric: MetricRules, event_type: str, properties: Mapping[str, Any]
) -> tuple[Decimal | str, str] | None:
    """What `metric` counts of an event: its aggregation value and group values, or None when it
    does not count it (no match, or no usable value or group values)."""
    if not metric.matches(event_type, properties):
        return None
    value = metric.value_of(properties)
    group = metric.group_of(properties)
    if value is None or group is None:
        return None
    return value, group


def fold(batch: Iterable[CountableEvent], metrics: Sequence[MetricRules]) -> UsageDeltas:
    """Usage per hour and per calendar month (`domain.periods.calendar_month`) of the batch."""
    deltas = UsageDeltas()
    for event in batch:
        counted = False
        for metric in metrics:
            counts = counted_by(metric, event.event_type, event.properties)
            if counts is None:
                continue
            value, group = counts
            counted = True
            _add(deltas, event, metric.id, value, group, hour_floor(event.timestamp_us))
        if counted:
            deltas.customers_touched.add(event.customer_id)
        else:
            deltas.unmatched_seqs.append(event.seq)
    deltas.monthly, deltas.month_ends = months_of(deltas.hourly)
    return deltas


def months_of(hourly: Mapping[BucketKey, Aggregate]) -> tuple[dict[BucketKey, Aggregate], dict[int, int]]:
    """The calendar months' aggregates of these hour aggregates, and each month's end by its start.

    An hour lies in one month: each month's delta is the merge of its hours' (`Aggregate.merge`
    is exact, associative and commutative), one merge per hour key rather than one add per event.
    A month of one hour is that hour's aggregate itself (the deltas are not changed once folded):
    spread over many customers, nearly every key is, and a copy each cost as much as the add."""
    monthly: dict[BucketKey, Aggregate] = {}
    month_ends: dict[int, int] = {}
    months: dict[int, Period] = {}  # by hour: most of a batch shares a few hours
    shared: set[BucketKey] = set()  # month keys whose aggregate is an hour's
    for (customer_id, metric_id, hour, group), aggregate in hourly.items():
        month = months.get(hour)
        if month is None:
            month = months[hour] = calendar_month(hour)
            month_ends[month.start_us] = month.end_us
        key = (customer_id, metric_id, month.start_us, group)
        found = monthly.get(key)
        if found is None:
            monthly[key] = aggregate
            shared.add(key)
            continue
        if key in shared:
            shared.discard(key)
            found = monthly[key] = found.copy()
        found.merge(aggregate)
    return monthly, month_ends


def _add(
    deltas: UsageDeltas, event: CountableEvent, metric_id: str, value: Decimal | str, group: str, hour: int
) -> None:
    customer_id = event.customer_id
    hour_key = (customer_id, metric_id, hour, group)
    aggregate = deltas.hourly.get(hour_key)
    if aggregate is None:
        deltas.hourly[hour_key] = Aggregate.of(value, event.timestamp_us, event.seq)
    else:
        aggregate.add(value, event.timestamp_us, event.seq)
    movement = deltas.movements.get((customer_id, metric_id))
    if movement is None:
        movement = deltas.movements[customer_id, metric_id] = Movement()
    movement.events += 1
    if isinstance(value, str):
        deltas.unique_values.add((*hour_key, value))
        movement.added += 1
    elif value >= 0:
        movement.added += value
    else:
        movement.removed -= value
