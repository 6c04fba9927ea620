"""Partitions: how the engine's work is split between engine processes.

The event log is read by partition. An event's partition is a pure function of the event itself
(the customer reference it was sent with), so every engine that ever reads it agrees on which
partition counts it, whoever holds that partition when, and an event is never counted by two.

A customer's billing (drafts, balances, alert states, notifications) has one owner too: the
holder of the customer's home partition, fixed when the customer is created: the partition of
its first ingest alias if it has one (what applications usually send events with), else of its
id. An event sent with another reference of the customer is counted where it lands, and its
customer's billing is handed to the home partition's holder (a billing request), so that alert
states are only ever written by one engine.

The number of partitions is fixed: changing it would move every customer. 256 lets up to a few
hundred engine processes share the work while keeping the per-partition bookkeeping small.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

PARTITION_COUNT = 256


def partition_of(key: str) -> int:
    """The partition of a customer reference (an id or an ingest alias); stable across versions."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % PARTITION_COUNT


def home_partition(customer_id: str, ingest_aliases: Sequence[str]) -> int:
    """Where a new customer's billing is owned: its first alias's partition, else its id's."""
    return partition_of(ingest_aliases[0] if ingest_aliases else customer_id)


def fair_share(members: int) -> int:
    """Most partitions one of `members` live engines should hold: an even split, rounded up."""
    return -(-PARTITION_COUNT // max(members, 1))
