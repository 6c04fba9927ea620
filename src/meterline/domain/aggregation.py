"""Usage aggregates and how they compose.

An `Aggregate` holds what COUNT, SUM, MAX and LATEST need; these compose across buckets and
batches by `merge`, which is associative and commutative, so hour buckets roll up into days,
periods and arbitrary windows exactly. UNIQUE does not compose from a count, so its distinct
values are kept as a set beside the aggregate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Context, Decimal

from meterline.domain.metrics import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, AggregationType

ZERO = Decimal(0)
# Sums stay exact: values carry at most 80 significant digits (see metrics.as_decimal), so 100
# digits hold the sum of far more events than any meter will see (the default context keeps 28).
_EXACT = Context(prec=MAX_INTEGER_DIGITS + MAX_FRACTION_DIGITS + 20)


@dataclass(slots=True)
class Aggregate:
    count: int = 0
    total: Decimal = ZERO
    maximum: Decimal | None = None
    latest: Decimal | None = None
    latest_ts_us: int = -1
    latest_seq: int = -1
    distinct: set[str] = field(default_factory=set)
    folded_seq: int = -1  # the highest log position folded in (not the latest by timestamp)

    def add(self, value: Decimal | str, ts_us: int, seq: int) -> None:
        self.count += 1
        if seq > self.folded_seq:
            self.folded_seq = seq
        if isinstance(value, str):
            self.distinct.add(value)
            return
        self.total = _EXACT.add(self.total, value)
        if self.maximum is None or value > self.maximum:
            self.maximum = value
        if (ts_us, seq) > (self.latest_ts_us, self.latest_seq):
            self.latest, self.latest_ts_us, self.latest_seq = value, ts_us, seq

    @classmethod
    def of(cls, value: Decimal | str, ts_us: int, seq: int) -> Aggregate:
        """`Aggregate()` with one value added (`add`), built at once: spread over many customers,
        nearly every bucket a batch folds holds one event."""
        if isinstance(value, str):
            return cls(1, distinct={value}, folded_seq=max(seq, -1))
        if (ts_us, seq) > (-1, -1):
            return cls(1, _EXACT.add(ZERO, value), value, value, ts_us, seq, set(), max(seq, -1))
        return cls(1, _EXACT.add(ZERO, value), value, None, -1, -1, set(), max(seq, -1))

    def merge(self, other: Aggregate) -> None:
        self.count += other.count
        if other.folded_seq > self.folded_seq:
            self.folded_seq = other.folded_seq
        self.total = _EXACT.add(self.total, other.total)
        if other.maximum is not None and (self.maximum is None or other.maximum > self.maximum):
            self.maximum = other.maximum
        if (other.latest_ts_us, other.latest_seq) > (self.latest_ts_us, self.latest_seq):
            self.latest, self.latest_ts_us, self.latest_seq = (
                other.latest,
                other.latest_ts_us,
                other.latest_seq,
            )
        self.distinct |= other.distinct

    def copy(self) -> Aggregate:
        return Aggregate(
            self.count,
            self.total,
            self.maximum,
            self.latest,
            self.latest_ts_us,
            self.latest_seq,
            set(self.distinct),
            self.folded_seq,
        )

    def value(self, aggregation: AggregationType) -> Decimal | None:
        """The metric's value; None where no event gave one (MAX/LATEST of nothing)."""
        if aggregation is AggregationType.COUNT:
            return Decimal(self.count)
        if aggregation is AggregationType.SUM:
            return self.total
        if aggregation is AggregationType.MAX:
            return self.maximum
        if aggregation is AggregationType.LATEST:
            return self.latest
        return Decimal(len(self.distinct))


def exact_sum(a: Decimal, b: Decimal) -> Decimal:
    """a + b with every digit kept (how `Aggregate` adds totals)."""
    return _EXACT.add(a, b)


def merged(aggregates: Iterable[Aggregate]) -> Aggregate:
    result = Aggregate()
    for aggregate in aggregates:
        result.merge(aggregate)
    return result
