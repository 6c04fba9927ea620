"""The fold's shortcuts (metrics picked by event type, COUNT in ints) change nothing it produces.

`reference_fold` is the fold as it was before them: every metric asked of every event, each value
added to its aggregate and movement as it came. For any batch and any metrics, the fold gives the
same deltas, value for value (a Decimal's digits and exponent too) and in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterline.domain.aggregation import Aggregate
from meterline.domain.metrics import AggregationType, MetricRules, PropertyFilter
from meterline.domain.timeutil import US_PER_HOUR, hour_floor
from meterline.domain.usage_fold import (
    CountableEvent,
    Movement,
    UsageDeltas,
    counted_by,
    fold,
    months_of,
)
from tests.support.usage_model import BASE_US, numeric_values, unique_values

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EVENT_TYPES = ("call", "upload", "other")


def reference_fold(batch: Iterable[CountableEvent], metrics: Sequence[MetricRules]) -> UsageDeltas:
    deltas = UsageDeltas()
    for event in batch:
        counted = False
        for metric in metrics:
            counts = counted_by(metric, event.event_type, event.properties)
            if counts is None:
                continue
            value, group = counts
            counted = True
            _reference_add(deltas, event, metric.id, value, group, hour_floor(event.timestamp_us))
        if counted:
            deltas.customers_touched.add(event.customer_id)
        else:
            deltas.unmatched_seqs.append(event.seq)
    deltas.monthly, deltas.month_ends = months_of(deltas.hourly)
    return deltas


def _reference_add(
    deltas: UsageDeltas, event: CountableEvent, metric_id: str, value: Decimal | str, group: str, hour: int
) -> None:
    hour_key = (event.customer_id, metric_id, hour, group)
    aggregate = deltas.hourly.get(hour_key)
    if aggregate is None:
        deltas.hourly[hour_key] = Aggregate.of(value, event.timestamp_us, event.seq)
    else:
        aggregate.add(value, event.timestamp_us, event.seq)
    movement = deltas.movements.setdefault((event.customer_id, metric_id), Movement())
    movement.events += 1
    if isinstance(value, str):
        deltas.unique_values.add((*hour_key, value))
        movement.added += 1
    elif value >= 0:
        movement.added += value
    else:
        movement.removed -= value


def exactly(value: Any) -> Any:
    """A value as compared here: a Decimal by its digits and exponent, not only its value."""
    return ("D", str(value)) if isinstance(value, Decimal) else value


def aggregate_state(aggregate: Aggregate) -> tuple[Any, ...]:
    return (
        aggregate.count,
        exactly(aggregate.total),
        exactly(aggregate.maximum),
        exactly(aggregate.latest),
        aggregate.latest_ts_us,
        aggregate.latest_seq,
        sorted(aggregate.distinct),
        aggregate.folded_seq,
    )


def deltas_state(deltas: UsageDeltas) -> tuple[Any, ...]:
    return (
        [(key, aggregate_state(a)) for key, a in deltas.hourly.items()],
        [(key, aggregate_state(a)) for key, a in deltas.monthly.items()],
        deltas.month_ends,
        sorted(deltas.unique_values),
        deltas.unmatched_seqs,
        sorted(deltas.customers_touched),
        [(key, exactly(m.added), exactly(m.removed), m.events) for key, m in deltas.movements.items()],
    )


type_filters = st.sampled_from(
    [
        (None, None),
        (frozenset({"call"}), None),
        (frozenset({"call", "upload"}), None),
        (None, frozenset({"upload"})),
        (frozenset({"call"}), frozenset({"call"})),
    ]
)
property_filters = st.lists(
    st.builds(
        PropertyFilter,
        name=st.sampled_from(["g", "u", "v"]),
        exists=st.sampled_from([None, True, False]),
        in_values=st.sampled_from([None, frozenset({"eu"}), frozenset({"eu", "1"})]),
        not_in_values=st.sampled_from([None, frozenset({"us"})]),
    ),
    max_size=2,
).map(tuple)


@st.composite
def metric_sets(draw: st.DrawFn) -> tuple[MetricRules, ...]:
    metrics = []
    for index in range(draw(st.integers(0, 5))):
        aggregation = draw(st.sampled_from(list(AggregationType)))
        type_in, type_not_in = draw(type_filters)
        key = None
        if aggregation is not AggregationType.COUNT:
            key = "u" if aggregation is AggregationType.UNIQUE else "v"
        metrics.append(
            MetricRules(
                f"m{index}",
                aggregation,
                aggregation_key=key,
                event_type_in=type_in,
                event_type_not_in=type_not_in,
                property_filters=draw(st.one_of(st.just(()), property_filters)),
                group_keys=draw(st.sampled_from([(), (("g",),), (("g",), ("u",))])),
            )
        )
    return tuple(metrics)


@st.composite
def batches(draw: st.DrawFn) -> list[CountableEvent]:
    events = []
    seqs = draw(
        st.permutations(range(1, draw(st.integers(0, 30)) + 1))
    )  # any order, though the log's is rising
    for seq in seqs:
        properties: dict[str, Any] = {}
        v_raw, _exact = draw(numeric_values)
        if v_raw is not None:
            properties["v"] = v_raw
        if draw(st.booleans()):
            properties["u"] = draw(unique_values)
        if draw(st.booleans()):
            properties["g"] = draw(st.sampled_from(["eu", "us", 1, True, None, "z" * 2000]))
        events.append(
            CountableEvent(
                seq,
                draw(st.sampled_from(["c1", "c2", "c3"])),
                draw(st.sampled_from(EVENT_TYPES)),
                BASE_US + draw(st.integers(0, 2)) * US_PER_HOUR + draw(st.sampled_from([0, 7, -1_000_000])),
                properties,
            )
        )
    return events


@PROPERTY_SETTINGS
@given(batch=batches(), metrics=metric_sets())
def test_the_fold_gives_what_it_gave_before_its_shortcuts(
    batch: list[CountableEvent], metrics: tuple[MetricRules, ...]
) -> None:
    assert deltas_state(fold(batch, metrics)) == deltas_state(reference_fold(batch, metrics))


def test_a_count_of_many_events_is_the_sum_of_their_ones() -> None:
    count = MetricRules("m", AggregationType.COUNT, event_type_in=frozenset({"call"}))
    batch = [CountableEvent(seq, "c1", "call", BASE_US + seq, {}) for seq in range(1, 1001)]
    batch.append(CountableEvent(1001, "c1", "upload", BASE_US, {}))
    deltas = fold(batch, [count])
    (aggregate,) = deltas.hourly.values()
    assert aggregate_state(aggregate) == aggregate_state(
        reference_fold(batch, [count]).hourly[next(iter(deltas.hourly))]
    )
    assert aggregate.count == 1000 and aggregate.total == Decimal(1000)
    assert (aggregate.latest_ts_us, aggregate.latest_seq) == (BASE_US + 1000, 1000)
    assert deltas.movements["c1", "m"].added == Decimal(1000)
    assert deltas.unmatched_seqs == [1001]
