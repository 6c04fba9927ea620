"""A naive model of usage: what clients send, what the log keeps, and what each metric must show.

The oracle uses Fractions, plain max and a key comparison for LATEST, so it shares nothing with
`meterline.domain.aggregation` but the meaning of each aggregation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from meterline.domain.aggregation import Aggregate
from meterline.domain.timeutil import US_PER_HOUR, month_bounds, now_us

# 20:00 two days before last month began (from now): events a few days long span two billing
# periods, well in the past.
BASE_US = month_bounds(month_bounds(now_us())[0] - 1)[0] - 28 * US_PER_HOUR


@dataclass(frozen=True)
class Roles:
    """The metric id playing each part of the model (the metrics must be defined as below)."""

    count: str  # COUNT, no filters
    count_by_g: str  # COUNT, group_keys [["g"]]
    sum: str  # SUM of "v"
    max: str  # MAX of "v"
    latest: str  # LATEST of "v"
    unique: str  # UNIQUE of "u"

    def kinds(self) -> dict[str, str]:
        return {
            self.count: "COUNT",
            self.count_by_g: "COUNT",
            self.sum: "SUM",
            self.max: "MAX",
            self.latest: "LATEST",
            self.unique: "UNIQUE",
        }


# -- what clients send ---------------------------------------------------------------------------
@st.composite
def exact_numbers(draw: st.DrawFn) -> tuple[Any, Fraction]:
    """A usable numeric property value in a form a client may send, with its exact meaning.

    Mantissas of up to 31 digits at varied scales: sums need more than Decimal's default 28.
    """
    mantissa = draw(st.integers(-(10**30), 10**30))
    exponent = draw(st.integers(-10, 9))
    number = Decimal(f"{mantissa}E{exponent}")  # exact (scaleb would round to 28 digits)
    exact = Fraction(mantissa) * Fraction(10) ** exponent
    form = draw(st.sampled_from(["decimal", "string", "padded string", "int"]))
    if form == "int" and exponent >= 0:
        return mantissa * 10**exponent, exact
    if form == "string":
        return str(number), exact
    if form == "padded string":
        return f" {number} ", exact
    return number, exact


# Values a numeric metric cannot count: the event is not counted by it (never an error).
UNUSABLE_NUMBERS: list[Any] = [
    "abc",
    "",
    "NaN",
    "-Infinity",
    True,
    False,
    [1],
    {"a": 1},
    "1e999999999",  # would overflow Decimal arithmetic
    "1e200000",  # beyond PostgreSQL NUMERIC
    "1e-999999",
    Decimal("1E+40"),
    Decimal("1E-41"),
    "0E-100000",
]
numeric_values = st.one_of(
    exact_numbers(),
    st.sampled_from(UNUSABLE_NUMBERS).map(lambda v: (v, None)),
    st.just((None, None)),
)
unique_values = st.one_of(
    st.sampled_from(["a", "b", "1", "true", "x" * 600, "y" * 600, "nul\x00", "nul\x00\x00", "sha256:ab"]),
    st.integers(-2, 2),
    st.booleans(),
    st.sampled_from([Decimal("1.5"), Decimal("1.50"), Decimal("2")]),
    st.text(max_size=5),
)


@dataclass(frozen=True)
class Sent:
    """One event as a client sent it (duplicates share a transaction id, not a payload)."""

    transaction_id: str
    customer_ref: str
    event_type: str
    timestamp_us: int
    properties: dict[str, Any]
    v_exact: Fraction | None  # the exact value of "v" when a numeric metric can count it


@st.composite
def sent_events(
    draw: st.DrawFn,
    *,
    hours: int = 4,
    transaction_ids: int = 16,
    customer_refs: Sequence[str] = ("c1", "c2"),
    prefix: str = "t",
) -> Sent:
    v_raw, v_exact = draw(numeric_values)
    properties: dict[str, Any] = {}
    if v_raw is not None:
        properties["v"] = v_raw
    if draw(st.booleans()):
        properties["u"] = draw(unique_values)
    if draw(st.booleans()):
        properties["g"] = draw(st.sampled_from(["eu", "us", 1, True, "z" * 2000]))
    return Sent(
        transaction_id=f"{prefix}{draw(st.integers(0, transaction_ids - 1))}",
        customer_ref=draw(st.sampled_from(list(customer_refs))),
        event_type=draw(st.sampled_from(["call", "upload"])),
        # Few distinct timestamps, so LATEST often has to break ties by seq.
        timestamp_us=BASE_US + draw(st.integers(0, hours - 1)) * US_PER_HOUR + draw(st.sampled_from([0, 7])),
        properties=properties,
        v_exact=v_exact,
    )


# -- what the log keeps --------------------------------------------------------------------------
@dataclass(frozen=True)
class Logged:
    seq: int
    sent: Sent


def accept_in_batches(batches: Iterable[Sequence[Sent]]) -> list[list[Logged]]:
    """What the event log keeps of each ingest batch: the first event per transaction id wins."""
    seen: set[str] = set()
    kept: list[list[Logged]] = []
    seq = 0
    for batch in batches:
        fresh: list[Logged] = []
        for event in batch:
            if event.transaction_id in seen:
                continue
            seen.add(event.transaction_id)
            seq += 1
            fresh.append(Logged(seq, event))
        kept.append(fresh)
    return kept


# -- what each metric must show ------------------------------------------------------------------
def canonical(value: Any) -> str:
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


@dataclass
class Expected:
    count: int = 0
    total: Fraction = Fraction(0)
    maximum: Fraction | None = None
    latest: Fraction | None = None
    latest_key: tuple[int, int] = (-1, -1)
    distinct: set[str] = field(default_factory=set)

    def add_number(self, value: Fraction, ts_us: int, seq: int) -> None:
        self.count += 1
        self.total += value
        self.maximum = value if self.maximum is None else max(self.maximum, value)
        if (ts_us, seq) > self.latest_key:
            self.latest, self.latest_key = value, (ts_us, seq)

    def merge(self, other: Expected) -> None:
        self.count += other.count
        self.total += other.total
        if other.maximum is not None:
            self.maximum = other.maximum if self.maximum is None else max(self.maximum, other.maximum)
        if other.latest_key > self.latest_key:
            self.latest, self.latest_key = other.latest, other.latest_key
        self.distinct |= other.distinct


MAX_GROUP_VALUE_CHARS = 1000  # well within what a group key may hold; the model's long value is 2000


def hour_of(us: int) -> int:
    return us - us % US_PER_HOUR


def oracle(
    counted: Iterable[tuple[int, str, Sent]], roles: Roles
) -> dict[tuple[str, str, int, str], Expected]:
    """(customer id, metric id, hour, group text) -> expected aggregate, for (seq, customer id, event)."""
    result: dict[tuple[str, str, int, str], Expected] = {}

    def slot(customer_id: str, sent: Sent, metric_id: str, group: str = "{}") -> Expected:
        return result.setdefault((customer_id, metric_id, hour_of(sent.timestamp_us), group), Expected())

    for seq, customer_id, sent in counted:
        props = sent.properties
        slot(customer_id, sent, roles.count).count += 1
        g = props.get("g")
        if g is None or len(canonical(g)) <= MAX_GROUP_VALUE_CHARS:
            group = json.dumps({"g": None if g is None else canonical(g)}, separators=(",", ":"))
            slot(customer_id, sent, roles.count_by_g, group).count += 1
        if sent.v_exact is not None:
            for metric_id in (roles.sum, roles.max, roles.latest):
                slot(customer_id, sent, metric_id).add_number(sent.v_exact, sent.timestamp_us, seq)
        if props.get("u") is not None:
            expected = slot(customer_id, sent, roles.unique)
            expected.count += 1
            expected.distinct.add(canonical(props["u"]))
    return result


def aggregate_fields(aggregate: Aggregate) -> tuple[object, ...]:
    """Every value an aggregate holds, to compare two exactly (a zero's sign and digits too)."""
    return (
        aggregate.count,
        aggregate.total,
        aggregate.maximum,
        aggregate.latest,
        aggregate.latest_ts_us,
        aggregate.latest_seq,
    )
