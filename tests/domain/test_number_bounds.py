"""Numbers at ingest: every number an event may carry is counted exactly, and one usage could not
keep is refused naming its property, never accepted and then left out of SUM, MAX or LATEST."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.aggregation import Aggregate
from meterline.domain.events import BatchRejected, IngestLimits, validate_batch
from meterline.domain.metrics import AggregationType, as_decimal
from meterline.domain.timeutil import format_rfc3339, now_us

NUMBERS = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.builds(lambda d, e: Decimal(f"{d}e{e}"), st.integers(-999, 999), st.integers(-(10**9), 10**9)),
)


def _batch(value: Any, *, as_text: bool) -> list[dict[str, Any]]:
    now = now_us()
    return [
        {
            "transaction_id": "t",
            "customer_id": "c",
            "event_type": "e",
            "timestamp": format_rfc3339(now),
            "properties": {"n": str(value) if as_text else value},
        }
    ]


@given(NUMBERS, st.booleans())
def test_a_number_is_refused_by_name_or_counted_exactly(value: int | Decimal, as_text: bool) -> None:
    try:
        events = validate_batch(_batch(value, as_text=as_text), now_us(), IngestLimits())
    except BatchRejected as rejected:
        assert rejected.problems == [
            "events[0].properties.n: must be a number with at most 40 digits before the decimal point"
            " and 40 after it"
        ]
        assert as_decimal(value) is None
        return
    kept = as_decimal(events[0].properties["n"])
    assert kept == Decimal(value)
    aggregate = Aggregate()
    aggregate.add(kept, 0, 0)
    aggregate.add(kept, 1, 1)
    with localcontext(Context(prec=200)):  # the expected sum exactly: 28 digits would round it
        doubled = 2 * Decimal(value)
    assert aggregate.value(AggregationType.SUM) == doubled
    assert aggregate.value(AggregationType.MAX) == Decimal(value)
    assert aggregate.value(AggregationType.LATEST) == Decimal(value)


def test_the_bound_is_forty_digits_each_side() -> None:
    for value in (10**40 - 1, Decimal("0." + "0" * 39 + "1"), -(10**40) + 1):
        validate_batch(_batch(value, as_text=False), now_us(), IngestLimits())
    for value in (10**40, Decimal("1e999999999"), Decimal("-1e999999999"), Decimal("1e-41")):
        try:
            validate_batch(_batch(value, as_text=False), now_us(), IngestLimits())
        except BatchRejected:
            continue
        raise AssertionError(f"{value} was accepted")
