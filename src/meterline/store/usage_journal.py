"""Usage folded by the engine and not yet merged into the usage tables: the usage journal.

Spread over many customers, nearly every usage row a batch writes lands on a page of its own, so
a batch of 10,000 events dirtied about 20,000 pages. The engine instead writes a batch's hour
deltas here, packed, one row per shard of customers (`shard_of`, a pure function of the customer
id), in the batch's own transaction: exactly-once as before, since the row commits with the
positions. Every so often it merges every row into the usage tables at once, in key order, and
deletes them, in one transaction (`usage.merge_journal`): each page is then written once for
many rows. Readers of usage add the rows of their customers' shards (`tail_of`), read in the
same transaction as the stored rows, so that a read reflects every batch committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import Connection, Integer, Select, delete, func, insert, select

from meterline.domain.aggregation import Aggregate
from meterline.domain.partitions import partition_of
from meterline.domain.usage_fold import BucketKey, UsageDeltas, months_of
from meterline.store.sql import IN_CHUNK, among_bound, bound_list, chunks
from meterline.store.tables import usage_journal

UniqueValue = tuple[str, str, int, str, str]  # (customer, metric, hour, group, value)
# An hour delta as packed: the key, then the aggregate's fields (decimals as text).
_Packed = tuple[str, str, int, str, int, str, str | None, str | None, int, int, int]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[list[_Packed], list[UniqueValue]])


def shard_of(customer_id: str) -> int:
    """The journal rows a customer's usage goes to (the partition its id hashes to)."""
    return partition_of(customer_id)


@dataclass(slots=True)
class Tail:
    """Usage in the journal: hour deltas, distinct values, and the highest log position folded
    for each customer (what `usage_monthly.folded_seq` will say once merged)."""

    hourly: dict[BucketKey, Aggregate] = field(default_factory=dict)
    unique_values: set[UniqueValue] = field(default_factory=set)
    folded: dict[str, int] = field(default_factory=dict)

    def monthly(self) -> tuple[dict[BucketKey, Aggregate], dict[int, int]]:
        """The calendar months' deltas and each month's end by its start (`usage_fold.months_of`)."""
        return months_of(self.hourly)

    def add(self, key: BucketKey, aggregate: Aggregate) -> None:
        found = self.hourly.get(key)
        if found is None:
            self.hourly[key] = aggregate
        else:
            found.merge(aggregate)
        customer_id = key[0]
        if aggregate.folded_seq > self.folded.get(customer_id, -1):
            self.folded[customer_id] = aggregate.folded_seq


def write(conn: Connection, deltas: UsageDeltas, through_seq: int, now_us: int) -> int:
    """Journal a batch's hour deltas and distinct values (folded through `through_seq`, the
    batch's position): one row per shard. Returns the deltas written."""
    packed: dict[int, tuple[list[_Packed], list[UniqueValue]]] = {}
    for key, agg in deltas.hourly.items():
        shard = shard_of(key[0])
        found = packed.get(shard)
        if found is None:
            found = packed[shard] = ([], [])
        found[0].append(_pack(key, agg))
    for value in deltas.unique_values:
        shard = shard_of(value[0])
        found = packed.get(shard)
        if found is None:
            found = packed[shard] = ([], [])
        found[1].append(value)
    rows = [
        {
            "shard": shard,
            "through_seq": through_seq,
            "deltas": len(hours) + len(values),
            "written_at_us": now_us,
            "body": _encoder.encode((hours, values)),
        }
        for shard, (hours, values) in sorted(packed.items())
    ]
    if rows:
        conn.execute(insert(usage_journal), rows)
    return sum(len(hours) + len(values) for hours, values in packed.values())


def tail_of(conn: Connection, customer_ids: Iterable[str]) -> Tail:
    """The journal's usage of these customers (their shards' rows, the others' deltas left out)."""
    wanted = set(customer_ids)
    tail = Tail()
    if not wanted:
        return tail
    shards = sorted({shard_of(c) for c in wanted})
    query = _of_shards(conn.dialect.name)
    for chunk in chunks(shards, IN_CHUNK):
        bodies = conn.execute(query, {"shards": bound_list(conn, chunk)}).scalars()
        _decode_into(tail, bodies, wanted)
    return tail


# Built once: reservation batches read their customers' shards every batch (`customer_spend`),
# and building the statement cost more than running it on an empty journal.
@lru_cache(maxsize=2)
def _of_shards(dialect: str) -> Select[Any]:
    return (
        select(usage_journal.c.body)
        .where(among_bound(dialect, usage_journal.c.shard, "shards", Integer))
        .order_by(usage_journal.c.shard, usage_journal.c.through_seq)
    )


def everything(conn: Connection) -> Tail:
    """Every delta in the journal (to merge them into the usage tables)."""
    bodies = conn.execute(
        select(usage_journal.c.body).order_by(usage_journal.c.shard, usage_journal.c.through_seq)
    ).scalars()
    tail = Tail()
    _decode_into(tail, bodies, None)
    return tail


def size(conn: Connection) -> tuple[int, int | None]:
    """The deltas in the journal, and when the oldest of its rows was written (None: empty)."""
    count, oldest = conn.execute(
        select(func.coalesce(func.sum(usage_journal.c.deltas), 0), func.min(usage_journal.c.written_at_us))
    ).one()
    return int(count), (None if oldest is None else int(oldest))


def clear(conn: Connection) -> None:
    """Delete every row (merged into the usage tables in the same transaction)."""
    conn.execute(delete(usage_journal))


def folded_through(conn: Connection, customer_ids: Sequence[str]) -> dict[str, int]:
    """The highest log position in the journal of each of these customers that has any there."""
    return tail_of(conn, customer_ids).folded


def _pack(key: BucketKey, agg: Aggregate) -> _Packed:
    return (
        *key,
        agg.count,
        str(agg.total),
        None if agg.maximum is None else str(agg.maximum),
        None if agg.latest is None else str(agg.latest),
        agg.latest_ts_us,
        agg.latest_seq,
        agg.folded_seq,
    )


def _decode_into(tail: Tail, bodies: Iterable[bytes], wanted: set[str] | None) -> None:
    for body in bodies:
        hours, values = _decoder.decode(body)
        for entry in _entries(hours, wanted):
            tail.add(entry[0], entry[1])
        for value in values:
            if wanted is None or value[0] in wanted:
                tail.unique_values.add(tuple(value))  # type: ignore[arg-type]


def _entries(hours: list[_Packed], wanted: set[str] | None) -> Iterator[tuple[BucketKey, Aggregate]]:
    for c, m, h, g, count, total, maximum, latest, latest_ts, latest_seq, folded_seq in hours:
        if wanted is not None and c not in wanted:
            continue
        aggregate = Aggregate(
            count,
            Decimal(total),
            None if maximum is None else Decimal(maximum),
            None if latest is None else Decimal(latest),
            latest_ts,
            latest_seq,
            set(),
            folded_seq,
        )
        yield (c, m, h, g), aggregate
