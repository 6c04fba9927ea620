"""Folding a batch of events into per-bucket usage deltas: the evaluator's pure core."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meterline.domain.aggregation import Aggregate
from meterline.domain.metrics import NO_GROUP, ONE, AggregationType, MetricRules
from meterline.domain.periods import Period, calendar_month
from meterline.domain.timeutil import US_PER_HOUR

BucketKey = tuple[str, str, int, str]  # (customer_id, metric_id, bucket start, group values)


@dataclass(slots=True)  # not frozen: its __init__ would cost three times as much, once per event
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
    """Usage per hour and per calendar month (`domain.periods.calendar_month`) of the batch.

    The same deltas as adding each counted value to its aggregate (`Aggregate.add`) and its
    movement, in event order, with less per event: an event visits only the metrics its event
    type passes (worked out once per type), and a COUNT value, always one, is counted in ints, its
    aggregates' totals and movements' additions made Decimal once the batch is folded."""
    deltas = UsageDeltas()
    hourly = deltas.hourly
    movements = deltas.movements
    touched = deltas.customers_touched
    unmatched = deltas.unmatched_seqs
    by_type: dict[str, tuple[tuple[MetricRules, bool, bool], ...]] = {}
    counted_several: list[Aggregate] = []  # COUNT aggregates of more than one event
    counted_movements: list[Movement] = []  # COUNT metrics' movements
    for event in batch:
        event_type = event.event_type
        plan = by_type.get(event_type)
        if plan is None:
            plan = by_type[event_type] = _plan_for(metrics, event_type)
        customer_id = event.customer_id
        seq = event.seq
        ts_us = event.timestamp_us
        hour = ts_us - ts_us % US_PER_HOUR  # (`hour_floor`)
        counted = False
        for metric, every_event, count in plan:
            if every_event:  # COUNT, no property filter, no group: counts every event of its types
                group: str = NO_GROUP
            else:
                properties = event.properties
                if metric.property_filters and not all(f.passes(properties) for f in metric.property_filters):
                    continue
                found_group = metric.group_of(properties)
                if count:
                    if found_group is None:
                        continue
                    group = found_group
                else:
                    value = metric.value_of(properties)
                    if value is None or found_group is None:
                        continue
                    counted = True
                    _add(deltas, event, metric.id, value, found_group, hour)
                    continue
            counted = True
            metric_id = metric.id
            hour_key = (customer_id, metric_id, hour, group)
            aggregate = hourly.get(hour_key)
            if aggregate is None:
                if seq >= 0 and ts_us >= 0:  # `Aggregate.of(ONE, ts_us, seq)`, built here
                    hourly[hour_key] = Aggregate(1, ONE, ONE, ONE, ts_us, seq, set(), seq)
                else:
                    hourly[hour_key] = Aggregate.of(ONE, ts_us, seq)
            else:  # `Aggregate.add` of one, its total set once folded
                if aggregate.count == 1:
                    counted_several.append(aggregate)
                aggregate.count += 1
                if seq > aggregate.folded_seq:
                    aggregate.folded_seq = seq
                if ts_us > aggregate.latest_ts_us or (
                    ts_us == aggregate.latest_ts_us and seq > aggregate.latest_seq
                ):
                    aggregate.latest, aggregate.latest_ts_us, aggregate.latest_seq = ONE, ts_us, seq
            movement = movements.get((customer_id, metric_id))
            if movement is None:
                movement = movements[customer_id, metric_id] = Movement()
                counted_movements.append(movement)
            movement.events += 1
        if counted:
            touched.add(customer_id)
        else:
            unmatched.append(seq)
    for aggregate in counted_several:
        aggregate.total = Decimal(aggregate.count)  # what adding one `count` times to zero gives
    for movement in counted_movements:
        movement.added = Decimal(movement.events)
    deltas.monthly, deltas.month_ends = months_of(hourly)
    return deltas


def _plan_for(metrics: Sequence[MetricRules], event_type: str) -> tuple[tuple[MetricRules, bool, bool], ...]:
    """The metrics whose event type filter this type passes, in their order, each with whether it
    counts every such event as one (COUNT, no property filter, no group) and whether it is COUNT."""
    return tuple(
        (
            metric,
            metric.aggregation_type is AggregationType.COUNT
            and not metric.property_filters
            and not metric.group_dimensions,
            metric.aggregation_type is AggregationType.COUNT,
        )
        for metric in metrics
        if metric.matches_type(event_type)
    )


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
