"""Ingest bodies: JSON arrays of 100 events with uuid4 transaction ids, built before the clock starts.

Throughput batches pick each event's customer uniformly at random. Even batches give each of
their customers exactly the same number of events, in a random order (the warm-ups). Spread
batches are the latency workload's: each crossing customer gets its events within a short window
of its own, the windows' starts staggered evenly over the run, and the rest of the events go to
background customers uniformly; every event has a time, and the batches follow that order. Burst
batches give each customer one event.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.ids import random_uuid
from bench.plan import ALIAS_PREFIX, EVENT_TYPE

EVENTS_PER_BATCH = 100


@dataclass(frozen=True)
class Batch:
    body: bytes
    last_transaction_id: str
    customers: tuple[int, ...]  # each event's customer index, in order


def _now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _batch(customers: list[int], rng: random.Random, stamp: str) -> Batch:
    ids = [random_uuid(rng) for _ in customers]
    events = ",".join(
        f'{{"transaction_id":"{tid}","customer_id":"{ALIAS_PREFIX}{c}","event_type":"{EVENT_TYPE}",'
        f'"timestamp":"{stamp}","properties":{{}}}}'
        for tid, c in zip(ids, customers, strict=True)
    )
    return Batch(f"[{events}]".encode(), ids[-1], tuple(customers))


def throughput_batches(customers: int, events: int, rng: random.Random) -> list[Batch]:
    """`events` events (rounded up to whole batches), each for a customer drawn at random."""
    stamp = _now_stamp()
    count = -(-events // EVENTS_PER_BATCH)
    return [
        _batch([rng.randrange(customers) for _ in range(EVENTS_PER_BATCH)], rng, stamp) for _ in range(count)
    ]


def _in_batches(order: Sequence[int], rng: random.Random) -> list[Batch]:
    """The events of `order` (each a customer index), cut into batches of 100 in that order."""
    stamp = _now_stamp()
    return [
        _batch(list(order[i : i + EVENTS_PER_BATCH]), rng, stamp)
        for i in range(0, len(order), EVENTS_PER_BATCH)
    ]


def even_batches(customers: Sequence[int], events_per_customer: int, rng: random.Random) -> list[Batch]:
    """Each of these customers gets exactly `events_per_customer` events, shuffled across the batches."""
    order = [c for c in customers for _ in range(events_per_customer)]
    rng.shuffle(order)
    return _in_batches(order, rng)


@dataclass(frozen=True)
class Spread:
    """The latency workload's events: `events` in all over `seconds`; each crossing customer gets
    `events_per_customer` of them within a window of `window_s` of its own."""

    crossing: Sequence[int]
    background: Sequence[int]
    events_per_customer: int
    events: int
    seconds: float
    window_s: float


def spread_batches(spread: Spread, rng: random.Random) -> list[Batch]:
    """Every event gets a time: a crossing customer's fall in its window (the windows' starts
    evenly staggered over the run, customers in random order), the background's anywhere in the
    run, uniformly. Sorted by time and cut into batches of 100, so that at a constant rate of
    batches each event is posted about when its time comes."""
    crossing = list(spread.crossing)
    rng.shuffle(crossing)
    step = max(spread.seconds - spread.window_s, 0.0) / max(len(crossing), 1)
    timed = [
        (k * step + rng.random() * spread.window_s, customer)
        for k, customer in enumerate(crossing)
        for _ in range(spread.events_per_customer)
    ]
    background = max(0, spread.events - len(timed))
    timed += [(rng.random() * spread.seconds, rng.choice(spread.background)) for _ in range(background)]
    timed.sort()
    return _in_batches([customer for _time, customer in timed], rng)


def burst_batches(customers: Sequence[int], rng: random.Random) -> list[Batch]:
    """One event for each of these customers, in random order."""
    order = list(customers)
    rng.shuffle(order)
    return _in_batches(order, rng)
