"""Partition leases on a real database: shares, expiry, take-over, and the check a batch makes.

Each test uses member ids of its own and gives every partition back at the end, so it neither
sees nor disturbs the partitions of other tests' evaluators on the same database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from meterline.domain.partitions import PARTITION_COUNT, fair_share, home_partition, partition_of
from meterline.store import partitions
from meterline.store.db import Database
from meterline.store.partitions import Holding, LeaseLost
from tests.support.databases import migrated

LEASE_US = 10_000_000
T0 = 1_000_000_000_000


@pytest.fixture(scope="module")
def db(module_database_url: str) -> Iterator[Database]:
    with migrated(module_database_url) as database:
        yield database


@pytest.fixture
def members(db: Database) -> Iterator[list[str]]:
    ids = [f"test-{uuid.uuid4().hex[:8]}-{n}" for n in range(3)]
    yield ids
    with db.write() as conn:
        for member in ids:
            partitions.leave(conn, member)


def refresh(db: Database, member: str, now: int, **kwargs: list[str]) -> Holding:
    with db.write() as conn:
        return partitions.refresh(conn, member, now, LEASE_US, **kwargs)


def test_partitions_of_references_are_stable_and_spread() -> None:
    # Changing the function would move every customer: these values are part of the format.
    assert [partition_of(k) for k in ("acme", "customer-1", "6f1c")] == [129, 189, 253]
    spread = {partition_of(f"customer-{n}") for n in range(5000)}
    assert len(spread) == PARTITION_COUNT
    assert home_partition("id-1", ["acme", "other"]) == partition_of("acme")
    assert home_partition("id-1", []) == partition_of("id-1")
    assert [fair_share(n) for n in (0, 1, 2, 3, 256, 300)] == [256, 256, 128, 86, 1, 1]


def test_one_member_holds_every_partition(db: Database, members: list[str]) -> None:
    holding = refresh(db, members[0], T0)
    assert holding.holds_all and holding.partitions == frozenset(range(PARTITION_COUNT))


def test_members_share_the_partitions_evenly_and_disjointly(db: Database, members: list[str]) -> None:
    a, b = members[0], members[1]
    refresh(db, a, T0)
    refresh(db, b, T0)  # a still holds everything: b waits for a to give its surplus up
    refresh(db, a, T0 + 1)
    held_b = refresh(db, b, T0 + 2)
    held_a = refresh(db, a, T0 + 3)
    assert len(held_a.positions) == len(held_b.positions) == PARTITION_COUNT // 2
    assert held_a.partitions.isdisjoint(held_b.partitions)


def test_a_member_that_stops_renewing_loses_its_partitions_one_lease_later(
    db: Database, members: list[str]
) -> None:
    a, b = members[0], members[1]
    refresh(db, a, T0)
    assert not refresh(db, b, T0 + LEASE_US - 1).positions  # a's leases still run
    assert refresh(db, b, T0 + LEASE_US + 1).holds_all  # a is gone: b takes everything


def test_a_member_known_dead_is_taken_over_at_once(db: Database, members: list[str]) -> None:
    a, b = members[0], members[1]
    refresh(db, a, T0)
    assert refresh(db, b, T0 + 1, take_from=[a]).holds_all


def test_leaving_gives_every_partition_back_at_once(db: Database, members: list[str]) -> None:
    a, b = members[0], members[1]
    refresh(db, a, T0)
    with db.write() as conn:
        partitions.leave(conn, a)
    assert refresh(db, b, T0 + 1).holds_all


def test_a_batch_of_a_member_whose_partitions_were_taken_cannot_commit(
    db: Database, members: list[str]
) -> None:
    a, b = members[0], members[1]
    stale = refresh(db, a, T0)
    refresh(db, b, T0 + LEASE_US + 1)
    with pytest.raises(LeaseLost), db.write() as conn:
        partitions.lock_held(conn, a, stale)


def test_positions_move_forward_with_the_batch_only(db: Database, members: list[str]) -> None:
    a = members[0]
    holding = refresh(db, a, T0)
    start = holding.start()
    with db.write() as conn:
        partitions.lock_held(conn, a, holding)
        moved = partitions.advance(conn, a, holding, start + 5)
    with db.write() as conn:
        partitions.lock_held(conn, a, moved)  # the committed holding is the current one
        partitions.advance(conn, a, moved, start + 2)  # never backwards
    with db.read() as conn:
        assert set(partitions.positions(conn).values()) == {start + 5}
    with pytest.raises(LeaseLost), db.write() as conn:
        partitions.lock_held(conn, a, holding)  # the holding read before the batch is stale
