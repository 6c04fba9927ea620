"""Alert latency: from the acknowledgement that crosses a threshold to the webhook's arrival.

The crossing acknowledgement of (customer, alert) is the earliest acknowledgement time at which the
customer's acknowledged events make the alert's measure reach its threshold: replay the
acknowledged batches in the order of their acknowledgement times, counting each customer's
events, and note the time at which the count first reaches `Plan.events_to_fire(alert)`.
Latency is the webhook's arrival time (taken by the receiver) minus that time; both clocks are
this machine's wall clock. A notification can in principle arrive a hair before the client reads
the acknowledgement of its last event (the server commits, then answers), so a latency can be
slightly negative; it is kept as measured.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from bench.bodies import Batch
from bench.plan import ALIAS_PREFIX, AlertKind, Plan, parse_alert_name
from bench.receiver import Arrival

Key = tuple[int, AlertKind]  # (customer index, alert)


def crossing_acks(
    plan: Plan,
    batches: Sequence[Batch],
    ack_ns: Sequence[int],
    *,
    only: Collection[int] | None = None,
    already: int = 0,
) -> dict[Key, int]:
    """When each (customer, alert) was crossed, by acknowledged events; absent if never.

    Only the customers of `only` when given (the others crossed before, or never will); each
    customer had `already` events counted before these batches."""
    needed = {spec.kind: plan.events_to_fire(spec) for spec in plan.alerts}
    counts: dict[int, int] = {}
    crossed: dict[Key, int] = {}
    for k in sorted((k for k in range(len(batches)) if ack_ns[k]), key=lambda k: ack_ns[k]):
        for customer in batches[k].customers:
            if only is not None and customer not in only:
                continue
            counts[customer] = counts.get(customer, already) + 1
            for kind, events in needed.items():
                if counts[customer] == events:
                    crossed[(customer, kind)] = ack_ns[k]
    return crossed


@dataclass
class Latencies:
    """Latencies of the webhooks received, and of those still missing when the wait ended.

    A missing webhook counts with the latency it had reached when the wait ended (a lower bound),
    so that a slow delivery raises the percentiles instead of vanishing from them; `missing` says
    how many of the figures are such lower bounds.
    """

    samples: list[tuple[int, float]] = field(default_factory=list)  # (crossing ack ns, latency ms)
    # Of each received webhook: (ack -> the evaluator batch that measured the crossing began,
    # that batch's start -> arrival: the batch, its commit and the delivery), in ms.
    stages: list[tuple[float, float]] = field(default_factory=list)
    censored: list[tuple[int, float]] = field(default_factory=list)  # missing: (crossing, waited ms)
    expected: int = 0  # crossings computed from the acknowledgements
    unexpected: int = 0  # webhooks for no computed crossing
    duplicates: int = 0  # the same (customer, alert) received again (delivery is at least once)

    @property
    def missing(self) -> int:
        return len(self.censored)

    @property
    def values_ms(self) -> list[float]:
        return sorted(ms for _t, ms in [*self.samples, *self.censored])

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile (q in 0..100) of the latencies, in ms."""
        return nearest_rank(self.values_ms, q)

    def summary(self) -> dict[str, float | int | None]:
        values = self.values_ms
        to_batch = sorted(waited for waited, _rest in self.stages)
        after = sorted(rest for _waited, rest in self.stages)
        return {
            "p50_ms": self.percentile(50),
            "p99_ms": self.percentile(99),
            "max_ms": values[-1] if values else None,
            "to_batch_p50_ms": nearest_rank(to_batch, 50),
            "to_batch_p99_ms": nearest_rank(to_batch, 99),
            "after_batch_start_p50_ms": nearest_rank(after, 50),
            "after_batch_start_p99_ms": nearest_rank(after, 99),
            "webhooks": len(self.samples),
            "expected": self.expected,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "duplicates": self.duplicates,
        }


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of sorted values."""
    if not values:
        return None
    return values[max(0, math.ceil(q / 100 * len(values)) - 1)]


def key_of(arrival: Arrival) -> Key | None:
    parsed = parse_alert_name(arrival.alert_name)
    if parsed is None or not parsed[1].startswith(ALIAS_PREFIX):
        return None
    kind, alias = parsed
    try:
        return int(alias[len(ALIAS_PREFIX) :]), kind
    except ValueError:
        return None


def match(crossings: dict[Key, int], arrivals: Sequence[Arrival], waited_until_ns: int) -> Latencies:
    """Pair each crossing with the first webhook for it; those without one waited until then."""
    result = Latencies(expected=len(crossings))
    seen: set[Key] = set()
    for arrival in sorted(arrivals, key=lambda a: a.arrived_ns):
        key = key_of(arrival)
        if key is None or key not in crossings or arrival.type.endswith("_resolved"):
            result.unexpected += 1
            continue
        if key in seen:
            result.duplicates += 1
            continue
        seen.add(key)
        result.samples.append((crossings[key], (arrival.arrived_ns - crossings[key]) / 1e6))
        if arrival.evaluated_ns is not None:
            result.stages.append(
                (
                    (arrival.evaluated_ns - crossings[key]) / 1e6,
                    (arrival.arrived_ns - arrival.evaluated_ns) / 1e6,
                )
            )
    result.censored = [
        (crossed, max(0.0, (waited_until_ns - crossed) / 1e6))
        for key, crossed in crossings.items()
        if key not in seen
    ]
    return result
