"""Where the engine reads its partitions' events from: the one interface to the event log.

The engine asks for the events of the partitions it holds after each one's committed position,
and gets them in log order with the position it read through. Today the log is the `events`
table (a file of its own on SQLite), each event stored with its partition: a reader asks for its
partitions' events from the earliest position it holds and skips those of partitions already
further on. A log with a consumer per partition (Kafka, NATS JetStream) would
implement `read` with one consumer per held partition; nothing else in the engine would change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from meterline.domain.partitions import partition_of
from meterline.store import event_log
from meterline.store.db import Database
from meterline.store.event_log import LoggedEvent
from meterline.store.partitions import Holding


@dataclass(frozen=True, slots=True)
class LogBatch:
    events: list[LoggedEvent]  # of the held partitions only, in log order
    read_through: int  # every held partition's events up to here are in `events`


class EventSource(Protocol):
    def read(self, holding: Holding, limit: int) -> LogBatch: ...


class TableEventSource:
    """The event log table: one ordered scan from the earliest held position."""

    def __init__(self, db: Database):
        self.db = db

    def read(self, holding: Holding, limit: int) -> LogBatch:
        start = holding.start()
        if not holding.positions:
            return LogBatch([], start)
        # Events are immutable once logged: read outside the batch transaction, which checks that
        # the positions are still the ones read from.
        if holding.holds_all:
            with self.db.log_read() as conn:
                scanned = event_log.read_after(conn, start, limit)
            read_through = scanned[-1].seq if scanned else start
        else:  # the log gives only this engine's partitions' events
            with self.db.log_read() as conn:
                scanned, read_through = event_log.read_partitions_after(
                    conn, start, limit, holding.partitions
                )
        if holding.holds_all and len(set(holding.positions.values())) == 1:
            return LogBatch(scanned, read_through)  # the usual single engine: nothing to skip
        positions = holding.positions
        mine = [e for e in scanned if e.seq > positions.get(partition_of(e.customer_ref), e.seq)]
        return LogBatch(mine, read_through)
