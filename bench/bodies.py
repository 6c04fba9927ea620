"""Ingest bodies: JSON arrays of 100 events with uuid4 transaction ids, built before the clock starts.

Throughput batches pick each event's customer uniformly at random. Latency batches give each of
their customers exactly the same number of events, in a random order, so that each customer's
thresholds are crossed at a different moment of the run rather than all at once.
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


def latency_batches(customers: Sequence[int], events_per_customer: int, rng: random.Random) -> list[Batch]:
    """Each of these customers gets exactly `events_per_customer` events, shuffled across the batches."""
    stamp = _now_stamp()
    order = [c for c in customers for _ in range(events_per_customer)]
    rng.shuffle(order)
    return [
        _batch(order[i : i + EVENTS_PER_BATCH], rng, stamp) for i in range(0, len(order), EVENTS_PER_BATCH)
    ]
