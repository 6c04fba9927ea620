"""The event log: append-only, deduplicated on transaction_id, read in order by the evaluator.

Both engines give the same guarantee: events become visible in `seq` order, so a reader that
remembers the last `seq` it processed never skips one. SQLite has a single writer; on PostgreSQL
appends take a transaction-scoped advisory lock, so sequence order is commit order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Connection, delete, func, or_, select, text, true
from sqlalchemy.exc import DBAPIError

from meterline.domain.events import UsageEvent
from meterline.domain.partitions import partition_of
from meterline.store.sql import chunks
from meterline.store.tables import event_dedup, events

# Any constant unique to meterline: the advisory lock that orders appends on PostgreSQL.
EVENT_LOG_LOCK_KEY = 0x6D65746572
# Where PostgreSQL tells engine processes that an append committed (engine/log_listener.py).
LOG_CHANNEL = "meterline_log"
LOOKUP_CHUNK = 900

_encode_properties = msgspec.json.Encoder(decimal_format="number").encode
_decode_properties = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal).decode


# Not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__, three
# times what a plain one costs, once per event on the evaluator's hot path. Nothing changes one.
@dataclass(slots=True)
class LoggedEvent:
    seq: int
    transaction_id: str
    customer_ref: str
    event_type: str
    timestamp_us: int
    properties: dict[str, Any]
    received_at_us: int


def transaction_digest(transaction_id: str) -> bytes:
    """16-byte key of a transaction id: compact and evenly spread for the dedup index."""
    return hashlib.blake2b(transaction_id.encode(), digest_size=16).digest()


def append(conn: Connection, batch: Sequence[UsageEvent], received_at_us: int) -> int:
    """Append every event whose transaction_id is new; returns how many were new."""
    return append_batches(conn, [batch], received_at_us)[0]


def append_batches(
    conn: Connection, batches: Sequence[Sequence[UsageEvent]], received_at_us: int
) -> list[int]:
    """Append every event of these batches whose transaction_id is new, as `append` does for each
    in turn (an id two of them carry is the earlier one's); returns how many of each were new.

    A group commit's requests in one set of statements: one look-up, one sequence read and one
    insert per table for the whole group, where a call per request repeated each of them."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOG_LOCK_KEY})
    fresh: dict[bytes, tuple[int, UsageEvent]] = {}
    for index, batch in enumerate(batches):
        for event in batch:
            fresh.setdefault(transaction_digest(event.transaction_id), (index, event))
    for seen in _known_digests(conn, list(fresh)):
        del fresh[seen]
    counts = [0] * len(batches)
    if not fresh:
        return counts
    # Appends are serialized (SQLite's write lock, the advisory lock on PostgreSQL), so the next
    # sequence numbers are known: a plain executemany, not one INSERT ... RETURNING per event.
    first = last_seq(conn) + 1
    # A group names far fewer customers than it has events: each one's partition hashed once.
    partitions: dict[str, int] = {}
    rows = []
    for offset, (index, event) in enumerate(fresh.values()):
        counts[index] += 1
        ref = event.customer_ref
        partition = partitions.get(ref)
        if partition is None:
            partition = partitions[ref] = partition_of(ref)
        rows.append(
            (
                first + offset,
                event.transaction_id,
                ref,
                event.event_type,
                event.timestamp_us,
                _encode_properties(event.properties).decode(),
                received_at_us,
                partition,
            )
        )
    _insert_many(conn, events.name, _EVENT_COLUMNS, rows)
    keys = [(key, row[0], received_at_us) for key, row in zip(fresh, rows, strict=True)]
    _insert_many(conn, event_dedup.name, _DEDUP_COLUMNS, keys)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {LOG_CHANNEL}")  # delivered when the append commits
    return counts


# Each column with its PostgreSQL type, for the array each becomes there.
_EVENT_COLUMNS = (
    ("seq", "bigint"),
    ("transaction_id", "text"),
    ("customer_ref", "text"),
    ("event_type", "text"),
    ("timestamp_us", "bigint"),
    ("properties", "text"),
    ("received_at_us", "bigint"),
    ("partition", "integer"),
)
_DEDUP_COLUMNS = (("transaction_digest", "bytea"), ("event_seq", "bigint"), ("received_at_us", "bigint"))


def _insert_many(
    conn: Connection, table: str, columns: Sequence[tuple[str, str]], rows: list[tuple[Any, ...]]
) -> None:
    """The hot path of ingest, below SQLAlchemy: building its parameter dicts per row would cost
    more than the insert itself."""
    names = ", ".join(name for name, _type in columns)
    if conn.dialect.name == "postgresql":
        # COPY, rows formatted by the driver's C code: executemany sends a statement per row, and
        # its Python cost per row was most of an append's.
        sql = f"COPY {table} ({names}) FROM STDIN"
        driver_error = conn.dialect.loaded_dbapi.Error
        try:
            with conn.connection.dbapi_connection.cursor().copy(sql) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
        except driver_error as error:
            # Raised as SQLAlchemy raises every other statement's (DataError, IntegrityError, ...).
            raise DBAPIError.instance(sql, None, error, driver_error) from error
        return
    markers = ", ".join("?" * len(columns))  # SQLite's driver
    conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({markers})", rows)


def read_partitions_after(
    conn: Connection, position: int, limit: int, partitions: frozenset[int]
) -> tuple[list[LoggedEvent], int]:
    """These partitions' events after `position`, at most `limit`, and the position read through:
    every event of these partitions up to it is in the list.

    One statement, so one snapshot: the log's last position is read with the events, and every
    event up to it is visible (appends commit in sequence order)."""
    top = select(func.max(events.c.seq).label("top")).subquery()
    mine = (
        select(*_LOGGED_COLUMNS)
        .where(
            events.c.seq > position,
            or_(events.c.partition.in_(sorted(partitions)), events.c.partition.is_(None)),
        )
        .order_by(events.c.seq)
        .limit(limit)
        .subquery()
    )
    rows = conn.execute(
        select(top.c.top, *mine.c).select_from(top.outerjoin(mine, true())).order_by(mine.c.seq)
    ).all()
    decode = _decode_properties
    found = [LoggedEvent(r[1], r[2], r[3], r[4], r[5], decode(r[6]), r[7]) for r in rows if r[1] is not None]
    if len(found) == limit:
        return found, found[-1].seq
    last = rows[0][0] if rows else None
    return found, max(position, int(last or 0))


def read_after(conn: Connection, position: int, limit: int) -> list[LoggedEvent]:
    # The driver's statement, its rows fetched at once: on the evaluator's hot path, SQLAlchemy's
    # compiled select and its result rows cost as much again as reading the rows.
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    rows = conn.exec_driver_sql(
        f"SELECT {_LOGGED_NAMES} FROM {events.name} WHERE seq > {marker} ORDER BY seq LIMIT {marker}",
        (position, limit),
    ).fetchall()
    decode = _decode_properties
    return [LoggedEvent(r[0], r[1], r[2], r[3], r[4], decode(r[5]), r[6]) for r in rows]


def last_seq(conn: Connection) -> int:
    value = conn.execute(select(events.c.seq).order_by(events.c.seq.desc()).limit(1)).scalar()
    return int(value or 0)


def find_by_transaction_ids(conn: Connection, transaction_ids: Iterable[str]) -> list[LoggedEvent]:
    by_digest = {transaction_digest(t): t for t in transaction_ids}
    seqs: list[int] = []
    for chunk in chunks(list(by_digest), LOOKUP_CHUNK):
        seqs.extend(
            conn.execute(
                select(event_dedup.c.event_seq).where(event_dedup.c.transaction_digest.in_(chunk))
            ).scalars()
        )
    if not seqs:
        return []
    rows = conn.execute(select(events).where(events.c.seq.in_(seqs)).order_by(events.c.seq)).mappings()
    return [_logged(row) for row in rows]


def purge_expired_dedup_keys(conn: Connection, older_than_us: int) -> int:
    """Forget transaction ids accepted before `older_than_us` (the end of the dedup window)."""
    result = conn.execute(delete(event_dedup).where(event_dedup.c.received_at_us < older_than_us))
    return int(result.rowcount or 0)


def _known_digests(conn: Connection, digests: list[bytes]) -> list[bytes]:
    # A driver statement: compiling SQLAlchemy's expanding IN cost as much as the look-up itself.
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    known: list[bytes] = []
    for chunk in chunks(digests, LOOKUP_CHUNK):
        markers = ", ".join([marker] * len(chunk))
        found = conn.exec_driver_sql(
            f"SELECT transaction_digest FROM {event_dedup.name} WHERE transaction_digest IN ({markers})",
            tuple(chunk),
        )
        known.extend(bytes(d) for (d,) in found)
    return known


# In LoggedEvent's field order.
_LOGGED_COLUMNS = (
    events.c.seq,
    events.c.transaction_id,
    events.c.customer_ref,
    events.c.event_type,
    events.c.timestamp_us,
    events.c.properties,
    events.c.received_at_us,
)
_LOGGED_NAMES = ", ".join(column.name for column in _LOGGED_COLUMNS)


def _logged(row: Any) -> LoggedEvent:
    return LoggedEvent(
        seq=row["seq"],
        transaction_id=row["transaction_id"],
        customer_ref=row["customer_ref"],
        event_type=row["event_type"],
        timestamp_us=row["timestamp_us"],
        properties=_decode_properties(row["properties"]),
        received_at_us=row["received_at_us"],
    )
