"""Reading the event log by partition: an engine gets its partitions' events only, and the
position it read through covers every one of them, on SQLite and PostgreSQL (`db`: conftest.py)."""

from __future__ import annotations

import uuid

from meterline.domain.events import UsageEvent
from meterline.domain.partitions import partition_of
from meterline.domain.timeutil import now_us
from meterline.store import event_log
from meterline.store.db import Database


def refs_in_two_partitions() -> tuple[str, str]:
    first = f"mine-{uuid.uuid4().hex[:6]}"
    other = next(r for n in range(1000) if partition_of(r := f"other-{n}") != partition_of(first))
    return first, other


def append(db: Database, refs: list[str]) -> None:
    at = now_us()
    with db.log_write() as conn:
        event_log.append(conn, [UsageEvent(f"tx-{uuid.uuid4()}", r, "call", at, {}) for r in refs], at)


def test_an_engine_reads_its_partitions_events_through_the_end_of_the_log(db: Database) -> None:
    mine, other = refs_in_two_partitions()
    append(db, [mine, other, mine, other, other])
    with db.log_read() as conn:
        found, through = event_log.read_partitions_after(conn, 0, 100, frozenset({partition_of(mine)}))
        last = event_log.last_seq(conn)
    assert [e.customer_ref for e in found] == [mine, mine]
    assert through == last  # the other partition's events up to the end were passed over


def test_a_full_read_stops_at_its_last_event(db: Database) -> None:
    mine, other = refs_in_two_partitions()
    append(db, [mine, other, mine, other, mine])
    with db.log_read() as conn:
        found, through = event_log.read_partitions_after(conn, 0, 2, frozenset({partition_of(mine)}))
        rest, end = event_log.read_partitions_after(conn, through, 2, frozenset({partition_of(mine)}))
        last = event_log.last_seq(conn)
    assert len(found) == 2 and through == found[-1].seq < last  # more may follow: not past it
    assert [e.customer_ref for e in rest] == [mine] and end == last


def test_an_empty_log_or_none_of_mine_reads_nothing_and_moves_to_its_end(db: Database) -> None:
    mine, other = refs_in_two_partitions()
    with db.log_read() as conn:
        assert event_log.read_partitions_after(conn, 0, 10, frozenset({partition_of(mine)})) == ([], 0)
    append(db, [other, other])
    with db.log_read() as conn:
        found, through = event_log.read_partitions_after(conn, 0, 10, frozenset({partition_of(mine)}))
        assert found == [] and through == event_log.last_seq(conn)
