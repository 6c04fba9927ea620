"""CustomerSnapshots: which customers the evaluator may bill from what it kept, and which it must
read again (engine/snapshots.py). A kept customer is a hit, a read one a miss."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from meterline.domain.timeutil import now_us
from meterline.engine.snapshots import CustomerSnapshots
from meterline.store import customers, webhooks
from meterline.store.db import Database
from tests.support.databases import fresh_database, migrated


def new_customers(db: Database, count: int) -> list[str]:
    with db.write() as conn:
        return [customers.insert_customer(conn, f"c{i}", [], {}).id for i in range(count)]


def batch(db: Database, snapshots: CustomerSnapshots, customer_ids: Sequence[str]) -> tuple[int, int]:
    """One evaluator batch billing these customers; returns its (hits, misses)."""
    hits, misses = snapshots.hits, snapshots.misses
    with db.write() as conn:
        snapshots.begin(conn)
        states = snapshots.load(conn, customer_ids)
    assert sorted(states) == sorted(customer_ids)
    return snapshots.hits - hits, snapshots.misses - misses


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """Snapshots outlive a batch on SQLite only (PostgreSQL: the last test)."""
    with fresh_database("sqlite", tmp_path) as url, migrated(url) as database:
        yield database


def test_customers_are_kept_between_batches_while_nobody_else_writes(sqlite_db: Database) -> None:
    db = sqlite_db
    a, b = new_customers(db, 2)
    snapshots = CustomerSnapshots(capacity=10)
    assert batch(db, snapshots, [a, b]) == (0, 2)
    assert batch(db, snapshots, [a, b]) == (2, 0)
    assert len(snapshots) == 2


def test_a_commit_by_anyone_else_drops_every_snapshot(sqlite_db: Database) -> None:
    db = sqlite_db
    a, b = new_customers(db, 2)
    snapshots = CustomerSnapshots(capacity=10)
    batch(db, snapshots, [a, b])
    api = Database(db.url)  # the API, say: another connection commits
    try:
        new_customers(api, 1)
    finally:
        api.dispose()
    assert batch(db, snapshots, [a, b]) == (0, 2)


def test_webhook_delivery_recording_its_attempts_leaves_every_snapshot(sqlite_db: Database) -> None:
    """Delivery commits up to four times a second while webhooks flow; it writes no customer
    state, so the customers a batch measured are not read again at the next."""
    db = sqlite_db
    a, b = new_customers(db, 2)
    with db.write() as conn:
        webhooks.create_endpoint(conn, "https://example.com/hooks", None, "secret", now_us())
    snapshots = CustomerSnapshots(capacity=10)
    batch(db, snapshots, [a, b])
    delivery = Database(db.url, durable_commits=False)  # the delivery process's own
    try:
        for _ in range(3):
            with delivery.write(customer_state=False) as conn:
                webhooks.fan_out(conn, now_us(), 500)
    finally:
        delivery.dispose()
    assert batch(db, snapshots, [a, b]) == (2, 0)


def test_a_write_rolled_back_changes_nothing_so_leaves_every_snapshot(sqlite_db: Database) -> None:
    db = sqlite_db
    a, b = new_customers(db, 2)
    snapshots = CustomerSnapshots(capacity=10)
    batch(db, snapshots, [a, b])
    api = Database(db.url)
    try:
        with pytest.raises(LookupError), api.write() as conn:
            customers.insert_customer(conn, "never", [], {})
            raise LookupError("the request failed: its writes are rolled back")
    finally:
        api.dispose()
    assert batch(db, snapshots, [a, b]) == (2, 0)


def test_the_least_recently_billed_customers_go_first_beyond_capacity(sqlite_db: Database) -> None:
    db = sqlite_db
    a, b, c = new_customers(db, 3)
    snapshots = CustomerSnapshots(capacity=2)
    batch(db, snapshots, [a])
    batch(db, snapshots, [b])
    batch(db, snapshots, [a])  # a is now more recent than b
    batch(db, snapshots, [c])  # one too many: b goes
    assert len(snapshots) == 2
    assert batch(db, snapshots, [a]) == (1, 0)
    assert batch(db, snapshots, [c]) == (1, 0)
    assert batch(db, snapshots, [b]) == (0, 1)


def test_forgotten_and_cleared_customers_are_read_again(sqlite_db: Database) -> None:
    db = sqlite_db
    a, b = new_customers(db, 2)
    snapshots = CustomerSnapshots(capacity=10)
    batch(db, snapshots, [a, b])
    snapshots.forget([a])
    assert batch(db, snapshots, [a, b]) == (1, 1)
    snapshots.clear()  # a failed batch: what it changed was rolled back
    assert batch(db, snapshots, [a, b]) == (0, 2)


def test_no_capacity_keeps_nothing(sqlite_db: Database) -> None:
    db = sqlite_db
    [a] = new_customers(db, 1)
    snapshots = CustomerSnapshots(capacity=0)
    batch(db, snapshots, [a])
    assert batch(db, snapshots, [a]) == (0, 1)
    assert len(snapshots) == 0


def test_on_postgresql_a_snapshot_lives_for_one_batch(postgres_url: str) -> None:
    """No signal tells the evaluator that nobody else wrote, so it reads its customers each batch."""
    with migrated(postgres_url) as db:
        a, b = new_customers(db, 2)
        snapshots = CustomerSnapshots(capacity=10)
        assert batch(db, snapshots, [a, b]) == (0, 2)
        assert batch(db, snapshots, [a, b]) == (0, 2)
        assert len(snapshots) == 0
