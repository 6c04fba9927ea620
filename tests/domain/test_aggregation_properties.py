"""Usage aggregation is exact and composes: however events are deduplicated, batched and merged.

Checked against the naive model in `tests.support.usage_model`, plus unit tests of what a metric
counts and of the rules an ingest batch must pass.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterline.domain.aggregation import Aggregate, merged
from meterline.domain.events import BatchRejected, IngestLimits, validate_batch
from meterline.domain.metrics import AggregationType, MetricRules, PropertyFilter, rules_from_definition
from meterline.domain.periods import calendar_month
from meterline.domain.timeutil import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_SECOND,
    format_rfc3339,
    parse_rfc3339,
    to_us,
)
from meterline.domain.usage_fold import CountableEvent, UsageDeltas, fold
from meterline.domain.usage_windows import WindowSize, rollup, windows
from tests.support.usage_model import (
    BASE_US,
    Expected,
    Logged,
    Roles,
    Sent,
    accept_in_batches,
    exact_numbers,
    oracle,
    sent_events,
)

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COUNT = MetricRules("m-count", AggregationType.COUNT)
COUNT_BY_G = MetricRules("m-count-g", AggregationType.COUNT, group_keys=(("g",),))
SUM = MetricRules("m-sum", AggregationType.SUM, aggregation_key="v")
MAX = MetricRules("m-max", AggregationType.MAX, aggregation_key="v")
LATEST = MetricRules("m-latest", AggregationType.LATEST, aggregation_key="v")
UNIQUE = MetricRules("m-unique", AggregationType.UNIQUE, aggregation_key="u")
METRICS = (COUNT, COUNT_BY_G, SUM, MAX, LATEST, UNIQUE)
ROLES = Roles(COUNT.id, COUNT_BY_G.id, SUM.id, MAX.id, LATEST.id, UNIQUE.id)


def countable(event: Logged) -> CountableEvent:
    s = event.sent
    return CountableEvent(event.seq, s.customer_ref, s.event_type, s.timestamp_us, s.properties)


def as_fraction(value: Decimal | None) -> Fraction | None:
    return None if value is None else Fraction(value)


def assert_matches_oracle(
    hourly: dict[tuple[str, str, int, str], Aggregate], expected: dict[tuple[str, str, int, str], Expected]
) -> None:
    by_id = {m.id: m for m in METRICS}
    assert set(hourly) == set(expected)
    for key, aggregate in hourly.items():
        want = expected[key]
        kind = by_id[key[1]].aggregation_type
        assert aggregate.count == want.count, key
        if kind is AggregationType.SUM:
            assert Fraction(aggregate.value(kind) or 0) == want.total, key
        elif kind is AggregationType.MAX:
            assert as_fraction(aggregate.value(kind)) == want.maximum, key
        elif kind is AggregationType.LATEST:
            assert as_fraction(aggregate.value(kind)) == want.latest, key
        elif kind is AggregationType.UNIQUE:
            assert aggregate.value(kind) == len(want.distinct), key
        else:
            assert aggregate.value(kind) == want.count, key


def by_month(
    hourly: dict[tuple[str, str, int, str], Expected],
) -> dict[tuple[str, str, int, str], Expected]:
    """The oracle's hours rolled up into their calendar months, as the month rows must hold."""
    months: dict[tuple[str, str, int, str], Expected] = {}
    for (customer_id, metric_id, hour, group), want in hourly.items():
        key = (customer_id, metric_id, calendar_month(hour).start_us, group)
        months.setdefault(key, Expected()).merge(want)
    return months


def merge_deltas(parts: Sequence[UsageDeltas]) -> tuple[dict[Any, Aggregate], dict[Any, Aggregate], set[Any]]:
    hourly: dict[Any, Aggregate] = {}
    period: dict[Any, Aggregate] = {}
    unique: set[Any] = set()
    for part in parts:
        for target, source in ((hourly, part.hourly), (period, part.monthly)):
            for key, aggregate in source.items():
                target.setdefault(key, Aggregate()).merge(aggregate)
        unique |= part.unique_values
    return hourly, period, unique


# -- properties ---------------------------------------------------------------------------------
@PROPERTY_SETTINGS
@given(
    events=st.lists(sent_events(), max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=8),
    merge_order_seed=st.randoms(use_true_random=False),
)
def test_batch_by_batch_fold_and_merge_equals_one_pass_over_distinct_events(
    events: list[Sent], cuts: list[int], merge_order_seed: random.Random
) -> None:
    bounds = sorted({0, len(events), *(c for c in cuts if c <= len(events))})
    batches = [events[a:b] for a, b in itertools.pairwise(bounds)]
    kept = accept_in_batches(batches)
    distinct = [event for batch in kept for event in batch]
    # The first event of each transaction id wins, whatever its duplicates carry.
    assert [e.sent.transaction_id for e in distinct] == list(dict.fromkeys(e.transaction_id for e in events))

    parts = [fold([countable(e) for e in batch], METRICS) for batch in kept]
    merge_order_seed.shuffle(parts)
    hourly, period, unique = merge_deltas(parts)
    once = fold([countable(e) for e in distinct], METRICS)

    expected = oracle(((e.seq, e.sent.customer_ref, e.sent) for e in distinct), ROLES)
    assert_matches_oracle(hourly, expected)
    assert_matches_oracle(once.monthly, by_month(expected))
    assert hourly == once.hourly
    assert period == once.monthly
    assert unique == once.unique_values
    # A UNIQUE value is stored per hour bucket; their union is the distinct set of each bucket.
    for key, aggregate in once.hourly.items():
        if key[1] == UNIQUE.id:
            assert {u[4] for u in once.unique_values if u[:4] == key} == aggregate.distinct
    # COUNT counts every event here, so none is reported as unmatched.
    assert all(not p.unmatched_seqs for p in parts)


@st.composite
def aggregates(draw: st.DrawFn, seqs: range) -> Aggregate:
    aggregate = Aggregate()
    for seq in seqs:
        if draw(st.booleans()):
            continue
        ts = BASE_US + draw(st.integers(0, 3))
        if draw(st.booleans()):
            aggregate.add(draw(st.sampled_from(["a", "b", "c", "d"])), ts, seq)
        else:
            value, _exact = draw(exact_numbers())
            number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
            aggregate.add(number, ts, seq)
    return aggregate


@PROPERTY_SETTINGS
@given(st.data())
def test_merge_is_associative_and_commutative(data: st.DataObject) -> None:
    # Seqs are unique across aggregates, as they are across the event log.
    a = data.draw(aggregates(range(0, 8)))
    b = data.draw(aggregates(range(8, 16)))
    c = data.draw(aggregates(range(16, 24)))
    assert merged([merged([a, b]), c]) == merged([a, merged([b, c])])
    assert merged([a, b]) == merged([b, a])
    assert merged([a, Aggregate()]) == merged([a])
    for kind in AggregationType:
        assert merged([a, b, c]).value(kind) == merged([c, a, b]).value(kind)


def test_sums_stay_exact_beyond_28_significant_digits() -> None:
    aggregate = Aggregate()
    aggregate.add(Decimal("1E+30"), BASE_US, 1)
    aggregate.add(Decimal("1"), BASE_US, 2)
    aggregate.add(Decimal("0.000000000000000000001"), BASE_US, 3)
    assert aggregate.value(AggregationType.SUM) == Decimal(
        "1000000000000000000000000000001.000000000000000000001"
    )
    other = Aggregate()
    other.add(Decimal("-1E+30"), BASE_US, 4)
    aggregate.merge(other)
    assert aggregate.value(AggregationType.SUM) == Decimal("1.000000000000000000001")


@PROPERTY_SETTINGS
@given(
    events=st.lists(sent_events(hours=60), max_size=40, unique_by=lambda e: e.transaction_id),
    start_hour=st.integers(0, 30),
    length_hours=st.integers(1, 40),
    size=st.sampled_from(list(WindowSize)),
)
def test_hour_buckets_roll_up_into_windows_exactly(
    events: list[Sent], start_hour: int, length_hours: int, size: WindowSize
) -> None:
    logged = [Logged(seq, sent) for seq, sent in enumerate(events, start=1)]
    deltas = fold([countable(e) for e in logged], METRICS)
    start_us = BASE_US + start_hour * US_PER_HOUR
    end_us = start_us + length_hours * US_PER_HOUR
    window_list = windows(start_us, end_us, size)
    assert window_list[0][0] == start_us and window_list[-1][1] == end_us
    if size is WindowSize.DAY:
        assert all(w_end - w_start <= US_PER_DAY for w_start, w_end in window_list)
    rows = [
        (f"{customer}/{metric}", hour, group, aggregate)
        for (customer, metric, hour, group), aggregate in deltas.hourly.items()
    ]
    rolled = rollup(rows, window_list, lambda _group: ())
    for index, (w_start, w_end) in enumerate(window_list):
        inside = [e for e in logged if w_start <= e.sent.timestamp_us < w_end]
        direct = fold([countable(e) for e in inside], METRICS)
        for customer in ("c1", "c2"):
            for metric in METRICS:
                want = merged(
                    agg for (c, m, _h, _g), agg in direct.hourly.items() if c == customer and m == metric.id
                )
                got = rolled.get((f"{customer}/{metric.id}", index, ()), Aggregate())
                assert got.value(metric.aggregation_type) == want.value(metric.aggregation_type)
                assert got.count == want.count


# -- metric rules -------------------------------------------------------------------------------
def rules(**overrides: Any) -> MetricRules:
    fields: dict[str, Any] = {"id": "m", "aggregation_type": AggregationType.COUNT}
    fields.update(overrides)
    return MetricRules(**fields)


def test_event_type_filter_in_and_not_in() -> None:
    only_calls = rules(event_type_in=frozenset({"call", "sms"}))
    assert only_calls.matches("call", {})
    assert only_calls.matches("sms", {})
    assert not only_calls.matches("upload", {})
    assert not only_calls.matches("Call", {})  # case-sensitive, as Metronome
    not_uploads = rules(event_type_not_in=frozenset({"upload"}))
    assert not_uploads.matches("call", {})
    assert not not_uploads.matches("upload", {})
    both = rules(event_type_in=frozenset({"call", "upload"}), event_type_not_in=frozenset({"upload"}))
    assert both.matches("call", {}) and not both.matches("upload", {})


def test_property_filters() -> None:
    has_region = rules(property_filters=(PropertyFilter("region", exists=True),))
    assert has_region.matches("e", {"region": "eu"})
    assert has_region.matches("e", {"region": ""})
    assert not has_region.matches("e", {})
    assert not has_region.matches("e", {"region": None})  # null is absent

    no_region = rules(property_filters=(PropertyFilter("region", exists=False),))
    assert no_region.matches("e", {}) and no_region.matches("e", {"region": None})
    assert not no_region.matches("e", {"region": "eu"})

    in_eu = rules(property_filters=(PropertyFilter("region", in_values=frozenset({"eu", "1", "true"})),))
    assert in_eu.matches("e", {"region": "eu"})
    assert in_eu.matches("e", {"region": 1})  # numbers compare by their text
    assert in_eu.matches("e", {"region": True})
    assert not in_eu.matches("e", {"region": "us"})
    assert not in_eu.matches("e", {})  # in_values requires the property

    not_test = rules(property_filters=(PropertyFilter("env", not_in_values=frozenset({"test"})),))
    assert not_test.matches("e", {"env": "prod"})
    assert not_test.matches("e", {})  # absent is not in the excluded values
    assert not not_test.matches("e", {"env": "test"})

    both = rules(
        event_type_in=frozenset({"call"}),
        property_filters=(
            PropertyFilter("region", in_values=frozenset({"eu"})),
            PropertyFilter("env", not_in_values=frozenset({"test"})),
        ),
    )
    assert both.matches("call", {"region": "eu", "env": "prod"})
    assert not both.matches("sms", {"region": "eu", "env": "prod"})
    assert not both.matches("call", {"region": "eu", "env": "test"})
    assert not both.matches("call", {"region": "us"})


def test_value_of_each_aggregation() -> None:
    count = rules()
    assert count.value_of({}) == 1  # COUNT needs no property
    for kind in (AggregationType.SUM, AggregationType.MAX, AggregationType.LATEST):
        metric = rules(aggregation_type=kind, aggregation_key="bytes")
        assert metric.value_of({"bytes": 5}) == 5
        assert metric.value_of({"bytes": "12.50"}) == Decimal("12.50")
        assert metric.value_of({"bytes": Decimal("-0.1")}) == Decimal("-0.1")
        assert metric.value_of({}) is None  # missing aggregation_key: not counted
        assert metric.value_of({"bytes": None}) is None
        for unusable in ("lots", "", "NaN", "Infinity", True, [], {}, "1e999999999", "1e-999"):
            assert metric.value_of({"bytes": unusable}) is None, unusable
    unique = rules(aggregation_type=AggregationType.UNIQUE, aggregation_key="user")
    assert unique.value_of({"user": "ann"}) == "ann"
    assert unique.value_of({"user": 7}) == unique.value_of({"user": "7"})
    assert unique.value_of({}) is None


def test_unmatched_and_uncountable_events_are_reported_not_counted() -> None:
    metric = rules(
        aggregation_type=AggregationType.SUM, aggregation_key="bytes", event_type_in=frozenset({"x"})
    )
    batch = [
        CountableEvent(1, "c", "x", BASE_US, {"bytes": 2}),
        CountableEvent(2, "c", "x", BASE_US, {}),  # no aggregation_key
        CountableEvent(3, "c", "x", BASE_US, {"bytes": "two"}),  # not numeric
        CountableEvent(4, "c", "y", BASE_US, {"bytes": 2}),  # filtered out
        CountableEvent(5, "c", "x", BASE_US, {"bytes": "1e999999999"}),  # beyond what usage keeps
    ]
    deltas = fold(batch, [metric])
    assert deltas.unmatched_seqs == [2, 3, 4, 5]
    (aggregate,) = deltas.hourly.values()
    assert aggregate.count == 1 and aggregate.value(AggregationType.SUM) == 2


def test_long_and_nul_unique_values_still_count_distinct_values() -> None:
    metric = rules(aggregation_type=AggregationType.UNIQUE, aggregation_key="url")
    values = ["a" * 5000, "a" * 5001, "a" * 5000, "x\x00y", "x\x00y", "x\x00z", "sha256:" + "0" * 64]
    batch = [CountableEvent(i, "c", "e", BASE_US, {"url": v}) for i, v in enumerate(values, start=1)]
    deltas = fold(batch, [metric])
    (aggregate,) = deltas.hourly.values()
    assert aggregate.value(AggregationType.UNIQUE) == 5
    for *_key, stored in deltas.unique_values:
        assert "\x00" not in stored and len(stored.encode()) <= 512


def test_group_of_is_canonical() -> None:
    metric = rules(group_keys=(("region", "tier"), ("region",)))
    assert metric.group_dimensions == ("region", "tier")
    a = metric.group_of({"region": "eu", "tier": "gold", "other": 1})
    b = metric.group_of({"other": 2, "tier": "gold", "region": "eu"})
    assert a == b == '{"region":"eu","tier":"gold"}'
    assert metric.group_of({"region": "eu"}) == '{"region":"eu","tier":null}'
    assert metric.group_of({"region": "eu", "tier": None}) == metric.group_of({"region": "eu"})
    assert metric.group_of({"region": 1, "tier": True}) == '{"region":"1","tier":"true"}'
    assert rules().group_of({"region": "eu"}) == "{}"
    # Values too long to key usage by: the event is not counted by this metric (and is reported).
    assert metric.group_of({"region": "r" * 5000}) is None
    deltas = fold([CountableEvent(1, "c", "e", BASE_US, {"region": "r" * 5000})], [metric])
    assert deltas.hourly == {} and deltas.unmatched_seqs == [1]


def test_rules_from_definition() -> None:
    metric = rules_from_definition(
        "m1",
        "SUM",
        "bytes",
        {"in_values": ["call"]},
        [{"name": "region", "in_values": ["eu"]}, {"name": "env", "exists": False}],
        [["region"]],
    )
    assert metric.matches("call", {"region": "eu"})
    assert not metric.matches("call", {"region": "eu", "env": "x"})
    assert not metric.matches("sms", {"region": "eu"})
    assert metric.value_of({"bytes": "3"}) == 3
    assert metric.group_dimensions == ("region",)
    everything = rules_from_definition("m2", "COUNT", None, None, [], [])
    assert everything.matches("anything", {"x": 1})


# -- ingest batch validation --------------------------------------------------------------------
NOW_US = to_us(datetime(2026, 3, 10, 12, tzinfo=UTC))
LIMITS = IngestLimits()


def event(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "transaction_id": "tx-1",
        "customer_id": "cust",
        "event_type": "call",
        "timestamp": format_rfc3339(NOW_US),
        "properties": {"bytes": 1},
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not _DROP}


_DROP = object()


def problems_of(payload: Any, now_us: int = NOW_US) -> list[str]:
    with pytest.raises(BatchRejected) as rejected:
        validate_batch(payload, now_us, LIMITS)
    return rejected.value.problems


def test_valid_batch_keeps_every_event_in_order() -> None:
    batch = [event(transaction_id=f"tx-{i}", properties=None if i == 0 else {"i": i}) for i in range(100)]
    accepted = validate_batch(batch, NOW_US, LIMITS)
    assert [e.transaction_id for e in accepted] == [f"tx-{i}" for i in range(100)]
    assert accepted[0].properties == {}
    assert accepted[5].customer_ref == "cust" and accepted[5].timestamp_us == NOW_US
    no_properties = validate_batch([event(properties=_DROP)], NOW_US, LIMITS)
    assert no_properties[0].properties == {}


def test_batch_size_limits() -> None:
    assert problems_of([]) == ["body: must hold between 1 and 100 events, got 0"]
    assert problems_of([event(transaction_id=f"t{i}") for i in range(101)]) == [
        "body: must hold between 1 and 100 events, got 101"
    ]
    assert problems_of({"transaction_id": "t"}) == ["body: must be a JSON array of usage events"]
    assert problems_of("[]") == ["body: must be a JSON array of usage events"]


def test_every_problem_is_reported_with_its_index() -> None:
    payload = [
        event(),
        event(transaction_id=_DROP, customer_id=None),
        event(event_type=7, timestamp=True),
        "not an object",
        event(properties=[1, 2], colour="red"),
        event(transaction_id="", customer_id=["a"]),
        event(transaction_id="x" * 129),
        event(customer_id="c" * 257, event_type="e\x00"),
    ]
    problems = problems_of(payload)
    assert problems == [
        "events[1].transaction_id: is required",
        "events[1].customer_id: is required",
        "events[2].event_type: must be a string, got number",
        "events[2].timestamp: must be a string, got boolean",
        "events[3]: must be a JSON object",
        "events[4].colour: unknown field",
        "events[4].properties: must be an object, got array",
        "events[5].transaction_id: must not be empty",
        "events[5].customer_id: must be a string, got array",
        "events[6].transaction_id: must be at most 128 characters",
        "events[7].event_type: must not contain NUL characters",
        "events[7].customer_id: must be at most 256 characters",
    ]


def test_ids_the_event_log_cannot_store_are_refused() -> None:
    for name in ("transaction_id", "customer_id", "event_type"):
        assert problems_of([event(**{name: "a\x00b"})]) == [
            f"events[0].{name}: must not contain NUL characters"
        ]
    assert validate_batch(
        [event(transaction_id="t" * 128, customer_id="c" * 256, event_type="e" * 256)], NOW_US, LIMITS
    )
    assert problems_of([event(event_type="e" * 257)]) == [
        "events[0].event_type: must be at most 256 characters"
    ]


def test_timestamp_window() -> None:
    def at(us: int) -> dict[str, Any]:
        return event(timestamp=format_rfc3339(us))

    ahead = NOW_US + 24 * US_PER_HOUR
    back = NOW_US - 34 * US_PER_DAY
    assert validate_batch([at(ahead), at(back)], NOW_US, LIMITS)
    assert problems_of([at(back), at(ahead + US_PER_SECOND)]) == [
        "events[1].timestamp: must not be more than 24 hours in the future"
    ]
    assert problems_of([at(back - US_PER_SECOND)]) == [
        "events[0].timestamp: must not be more than 34 days in the past"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-10",
        "2026-03-10T12:00:00",  # no offset
        "2026-03-10T12:00Z",  # no seconds
        "2026-03-10T12:00:00+00",
        "2026-03-10T12:00:00+000",
        "2026-03-10T12:00:00,5Z",
        "2026-W11-2T12:00:00Z",  # ISO week date
        "2026-03-10T12:00:00.Z",
        "20260310T120000Z",
        "2026-3-10T12:00:00Z",
        "2026-03-10T25:00:00Z",
        "2026-02-30T12:00:00Z",
        "1773144000",
        "yesterday",
        " 2026-03-10T12:00:00Z",
        "2026-03-10T12:00:00Z\n",
    ],
)
def test_timestamps_that_are_not_rfc3339_are_refused(text: str) -> None:
    (problem,) = problems_of([event(timestamp=text)])
    assert problem.startswith("events[0].timestamp: must ")


@pytest.mark.parametrize(
    ("text", "expected_us"),
    [
        ("2026-03-10T12:00:00Z", NOW_US),
        ("2026-03-10t12:00:00z", NOW_US),
        ("2026-03-10T13:30:00+01:30", NOW_US),
        ("2026-03-10T12:00:00.250Z", NOW_US + 250_000),
        ("2026-03-10 12:00:00Z", NOW_US),
        ("2026-03-10T12:00:00+0000", NOW_US),
        ("2026-03-10T12:00:00.123456789Z", NOW_US + 123_457),  # rounded to the microsecond
        ("2026-03-10T11:59:59.9999995Z", NOW_US),
    ],
)
def test_rfc3339_timestamps_are_accepted(text: str, expected_us: int) -> None:
    (accepted,) = validate_batch([event(timestamp=text)], NOW_US, LIMITS)
    assert accepted.timestamp_us == expected_us


_typed_timestamp = msgspec.json.Decoder(Annotated[datetime, msgspec.Meta(tz=True)]).decode
_timestamp_texts = st.builds(
    lambda date, sep, time, fraction, offset: f"{date}{sep}{time}{fraction}{offset}",
    st.sampled_from(["2026-03-10", "2024-02-29", "2026-02-29", "2026-3-10", "2026-W11-2", "0001-01-01"]),
    st.sampled_from(["T", "t", " ", "_", ""]),
    st.sampled_from(["12:00:00", "23:59:59", "24:00:00", "12:00", "23:59:60", "120000"]),
    st.one_of(st.just(""), st.just("."), st.from_regex(r"[.,][0-9]{1,12}", fullmatch=True)),
    st.sampled_from(
        ["Z", "z", "", "+00:00", "-00:00", "+0530", "+05:30", "+05", "+24:00", "-23:59", "+00:00:00"]
    ),
)


@PROPERTY_SETTINGS
@given(_timestamp_texts)
def test_timestamps_read_as_the_typed_ingest_decoder_reads_them(text: str) -> None:
    """The slow validation path and the typed fast path must agree on every timestamp."""
    try:
        typed: int | None = to_us(_typed_timestamp(f'"{text}"'.encode()))
    except (msgspec.ValidationError, OverflowError):
        typed = None
    try:
        slow: int | None = to_us(parse_rfc3339(text))
    except (ValueError, OverflowError):
        slow = None
    assert slow == typed


one_values = (
    st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=-(10**30), max_value=10**30)
    | st.sampled_from([Decimal("-0"), Decimal("0.00"), Decimal("1E+2"), Decimal("-5E+3")])
    | st.text(min_size=1, max_size=5)
)


@settings(max_examples=300)
@given(value=one_values, ts_us=st.integers(-5, 10**12), seq=st.integers(-3, 10**9))
def test_an_aggregate_of_one_value_is_an_empty_one_with_the_value_added(
    value: Decimal | str, ts_us: int, seq: int
) -> None:
    """`Aggregate.of` (what the fold builds for a bucket's first event) is `Aggregate()` then `add`,
    to the digits and signs of each field."""
    added = Aggregate()
    added.add(value, ts_us, seq)
    built = Aggregate.of(value, ts_us, seq)
    assert built == added
    assert [str(v) for v in (built.total, built.maximum, built.latest)] == [
        str(v) for v in (added.total, added.maximum, added.latest)
    ]
