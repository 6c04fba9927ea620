"""Engines handing partitions over count every event exactly once.

Two engine members (A and B) run batches in any interleaving with appends, re-sends, either one
dying (it stops renewing: its partitions pass to the other one lease later, mid-work) or leaving
cleanly, and a dead one coming back as a new member. Whatever the interleaving, once the log is
drained the usage aggregates equal the naive model computed from scratch over the distinct
events, hour by hour and period by period: nothing skipped at a hand-over, nothing counted twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterline.domain.partitions import partition_of
from meterline.domain.timeutil import now_us
from meterline.engine.evaluator import Evaluator
from meterline.engine.membership import process_member_id
from meterline.store import event_log, partitions
from meterline.store.db import Database
from meterline.store.tables import engine_members
from tests.integration.test_evaluator_exactly_once import (
    BY_ALIAS,
    BY_ID,
    World,
    assert_usage_matches,
    events_strategy,
    new_world,
    retire,
)
from tests.support.databases import fresh_database, migrated
from tests.support.usage_model import BASE_US, Sent

LEASE_S = 3.0  # short beside the ticks, so hand-overs happen mid-work
LEASE_US = int(LEASE_S * 1_000_000)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with fresh_database("sqlite", tmp_path_factory.mktemp("handover")) as url, migrated(url) as database:
        yield database


@pytest.fixture(scope="module")
def postgres_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with fresh_database("postgres", tmp_path_factory.mktemp("handover")) as url, migrated(url) as database:
        yield database


class Group:
    """Engine members A and B on one test clock, as separate processes would be."""

    def __init__(self, db: Database):
        self.db = db
        self.now = now_us()
        self.members: dict[str, Evaluator | None] = {"A": None, "B": None}
        self.ids: list[str] = []

    def clock(self) -> int:
        return self.now

    def engine(self, name: str, batch_events: int) -> Evaluator:
        current = self.members[name]
        if current is None:
            member_id = f"{name}-{uuid.uuid4().hex[:8]}"
            self.ids.append(member_id)
            current = Evaluator(
                self.db,
                batch_events=batch_events,
                poll_interval_s=1.0,
                clock=self.clock,
                lease_s=LEASE_S,
                member_id=member_id,
            )
            self.members[name] = current
        current.batch_events = batch_events
        return current

    def die(self, name: str) -> None:
        """Killed: it renews nothing and gives nothing back; the other takes over one lease later."""
        self.members[name] = None

    def leave(self, name: str) -> None:
        engine = self.members[name]
        if engine is not None:
            engine.leave()
        self.members[name] = None

    def drain(self) -> None:
        """After the interleaving: time passes until every dead member's leases ran out, then A
        drains the log, holding every partition."""
        self.now += 2 * LEASE_US
        self.leave("B")
        engine = self.engine("A", 1000)
        engine.membership.refresh()
        assert engine.membership.holding.holds_all
        engine.drain()

    def close(self) -> None:
        with self.db.write() as conn:
            for member_id in self.ids:
                partitions.leave(conn, member_id)


def clear_other_members(db: Database) -> None:
    """Earlier tests' evaluators in this process hold the partitions: let them go."""
    with db.write() as conn:
        partitions.leave(conn, process_member_id())
        conn.execute(engine_members.delete())


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.lists(events_strategy, min_size=1, max_size=6)),
        st.tuples(st.just("resend"), st.integers(0, 30)),
        st.tuples(st.just("run"), st.sampled_from("AB"), st.integers(1, 4)),
        st.tuples(st.just("run"), st.sampled_from("AB"), st.integers(1, 4)),
        st.tuples(st.just("die"), st.sampled_from("AB")),
        st.tuples(st.just("leave"), st.sampled_from("AB")),
        st.tuples(st.just("tick"), st.integers(1, 5)),  # seconds
    ),
    max_size=24,
)


def run_with_hand_overs(db: Database, ops: list[tuple[Any, ...]]) -> None:
    clear_other_members(db)
    world: World = new_world(db)
    group = Group(db)
    try:
        batches: list[list[Sent]] = []
        for op in ops:
            if op[0] == "run":
                group.engine(op[1], op[2]).run_once()
            elif op[0] == "die":
                group.die(op[1])
            elif op[0] == "leave":
                group.leave(op[1])
            elif op[0] == "tick":
                group.now += op[1] * 1_000_000
            elif op[0] == "append":
                batches.append(list(op[1]))
                world.append(batches[-1])
            elif batches:
                batches.append(list(batches[op[1] % len(batches)]))
                world.append(batches[-1])
        group.drain()
        assert_usage_matches(world, batches)
    finally:
        group.close()
        retire(world)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_hand_overs_and_deaths_count_each_event_exactly_once_sqlite(
    sqlite_db: Database, ops: list[tuple[Any, ...]]
) -> None:
    run_with_hand_overs(sqlite_db, ops)


@pytest.mark.postgres
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_hand_overs_and_deaths_count_each_event_exactly_once_postgres(
    postgres_db: Database, ops: list[tuple[Any, ...]]
) -> None:
    run_with_hand_overs(postgres_db, ops)


def test_a_take_over_behind_the_takers_own_partitions_skips_what_it_already_counted(
    sqlite_db: Database,
) -> None:
    """B counts its partitions' events ahead of A, A dies, and B takes A's partitions over at
    their older position: B reads those events again from there and must count only A's."""
    db = sqlite_db
    clear_other_members(db)
    group = Group(db)
    group.engine("A", 10).run_once()  # A holds everything
    group.engine("B", 10).run_once()  # B joins, holding nothing yet
    group.now += LEASE_US  # A renews and gives half up, B takes it
    group.engine("A", 10).run_once()
    group.engine("B", 10).run_once()
    b_holds = group.engine("B", 1).membership.holding.partitions
    world = new_world(db)
    while (partition_of(world.alias) in b_holds) == (partition_of(world.customer_id) in b_holds):
        retire(world)  # both references with one member: a world whose two are split is wanted
        world = new_world(db)
    try:
        alias_of_b = partition_of(world.alias) in b_holds
        mine = BY_ALIAS if alias_of_b else BY_ID
        theirs = BY_ID if alias_of_b else BY_ALIAS
        batch = [
            Sent(f"h{n}", ref, "call", BASE_US + n, {"v": str(n)}, Fraction(n))
            for n, ref in enumerate([theirs, mine, theirs, mine, mine])
        ]
        world.append(batch)
        with db.log_read() as conn:
            last = event_log.last_seq(conn)  # the log ends with one of B's events
        while group.engine("B", 1).run_once().position < last:
            pass
        group.die("A")
        group.now += 2 * LEASE_US
        group.engine("B", 1000).run_once()  # takes A's partitions over, behind its own
        group.drain()
        assert_usage_matches(world, [batch])
    finally:
        group.close()
        retire(world)
