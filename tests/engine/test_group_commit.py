"""GroupCommitWriter: what an ingest request is told, and when (engine/group_commit.py)."""

from __future__ import annotations

import asyncio

import pytest

from meterline.domain.errors import Unavailable
from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import now_us
from meterline.engine.group_commit import GroupCommitWriter
from meterline.store import event_log
from meterline.store.db import Database


def events(*transaction_ids: str) -> list[UsageEvent]:
    at = now_us()
    return [UsageEvent(t, "customer", "call", at, {}) for t in transaction_ids]


def stored(db: Database) -> list[str]:
    with db.log_read() as conn:
        return sorted(e.transaction_id for e in event_log.read_after(conn, 0, 1000))


def test_each_request_is_told_how_many_of_its_events_were_new(db: Database) -> None:
    writer = GroupCommitWriter(db, max_events=1000)
    writer.start()
    try:

        async def run() -> list[int]:
            first = await writer.append(events("a", "b"))
            again = await asyncio.gather(writer.append(events("a", "c")), writer.append(events("b", "a")))
            return [first, *again]

        counts = asyncio.run(run())
    finally:
        writer.stop()
    assert counts[0] == 2
    assert sorted(counts[1:]) == [0, 1]  # "c" is new; "a" and "b" were stored before
    assert stored(db) == ["a", "b", "c"]


def test_a_transaction_id_two_requests_of_one_commit_carry_is_the_earlier_ones(db: Database) -> None:
    """The group's requests are appended together: what each is told, and the log's order, are
    as if they had been appended one after the other."""
    with db.log_write() as conn:
        event_log.append(conn, events("old"), now_us())
    with db.log_write() as conn:
        counts = event_log.append_batches(
            conn, [events("a", "old", "b"), events("b", "c", "a"), events("old"), events("d", "d")], now_us()
        )
    assert counts == [2, 1, 0, 1]
    with db.log_read() as conn:
        logged = event_log.read_after(conn, 0, 1000)
    assert [e.transaction_id for e in logged] == ["old", "a", "b", "c", "d"]
    assert [e.seq for e in logged] == sorted(e.seq for e in logged)
    with db.log_read() as conn:
        assert [e.transaction_id for e in event_log.find_by_transaction_ids(conn, ["a", "b", "c", "d"])] == [
            "a",
            "b",
            "c",
            "d",
        ]


def test_every_acknowledged_request_is_committed_and_announced(db: Database) -> None:
    announced: list[int] = []
    writer = GroupCommitWriter(db, max_events=7, on_commit=lambda: announced.append(len(stored(db))))
    writer.start()
    try:

        async def run() -> list[int]:
            return await asyncio.gather(*(writer.append(events(f"r{r}-1", f"r{r}-2")) for r in range(20)))

        counts = asyncio.run(run())
    finally:
        writer.stop()
    assert counts == [2] * 20
    assert len(stored(db)) == 40
    # Each commit is announced once it is durable (the evaluator is woken then), the last one
    # with everything stored.
    assert announced == sorted(announced) and announced[-1] == 40
    assert writer.requests_committed == 20 and writer.commits == len(announced)


def test_a_stopped_writer_refuses_requests_as_unavailable(db: Database) -> None:
    writer = GroupCommitWriter(db, max_events=1000)
    writer.start()
    writer.stop()
    with pytest.raises(Unavailable):
        asyncio.run(writer.append(events("late")))
    assert stored(db) == []


def test_requests_waiting_when_the_writer_stops_are_still_committed(db: Database) -> None:
    writer = GroupCommitWriter(db, max_events=1000)
    writer.start()

    async def run() -> list[int]:
        waiting = [asyncio.ensure_future(writer.append(events(f"w{r}"))) for r in range(5)]
        await asyncio.sleep(0)  # every request is queued
        writer.stop()
        return await asyncio.gather(*waiting)

    assert asyncio.run(run()) == [1] * 5
    assert stored(db) == [f"w{r}" for r in range(5)]
