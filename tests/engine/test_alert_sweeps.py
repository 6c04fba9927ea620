"""AlertSweeper: alert evaluations no event asks for come in bounded chunks, each customer once, by
the engine holding the customer's home partition, and resume where they stopped
(engine/alert_sweeps.py)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from decimal import Decimal

from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.partitions import PARTITION_COUNT, partition_of
from meterline.domain.timeutil import US_PER_HOUR, now_us
from meterline.engine.alert_sweeps import TRIGGERED_BY_CREATION, AlertSweeper
from meterline.store import alert_wakeups, customers
from meterline.store import alerts as store
from meterline.store.db import Database

CHUNK = 3


class Recorder:
    """The sweeper's report of each chunk it evaluated."""

    def __init__(self) -> None:
        self.chunks: list[list[str]] = []

    def __call__(self, customer_ids: Iterable[str]) -> None:
        self.chunks.append(list(customer_ids))


def aliases_in_one_partition(count: int) -> tuple[int, list[str]]:
    """Ingest aliases whose customers share a home partition (the first alias decides it)."""
    prefix = uuid.uuid4().hex[:8]
    by_partition: dict[int, list[str]] = {}
    for n in itertools.count():
        alias = f"{prefix}-{n}"
        found = by_partition.setdefault(partition_of(alias), [])
        found.append(alias)
        if len(found) == count:
            return partition_of(alias), found
    raise AssertionError("unreachable")


def new_customers(db: Database, count: int) -> tuple[int, list[str]]:
    """`count` customers of one home partition: (the partition, their ids in id order)."""
    partition, aliases = aliases_in_one_partition(count)
    with db.write() as conn:
        ids = [customers.insert_customer(conn, alias, [alias], {}).id for alias in aliases]
    return partition, sorted(ids)


def new_alert_for_every_customer(db: Database) -> str:
    with db.write() as conn:
        alert_id = store.create_alert(
            conn,
            {
                "name": "spend",
                "alert_type": "spend_threshold_reached",
                "threshold": Decimal(1000),
                "credit_type_id": USD_CENTS_CREDIT_TYPE_ID,
                "customer_id": None,
                "billable_metric_id": None,
                "invoice_types_filter": None,
                "group_values": None,
                "custom_field_filters": None,
                "credit_grant_type_filters": None,
                "evaluate_on_create": True,
                "uniqueness_key": None,
            },
        )
        store.start_sweep(conn, alert_id, TRIGGERED_BY_CREATION, range(PARTITION_COUNT))
    return alert_id


def run(db: Database, sweeper: AlertSweeper, at_us: int, partitions: frozenset[int] | None = None) -> bool:
    """One evaluator batch's sweeping, by an engine holding these partitions (None: all)."""
    with db.write() as conn:
        return sweeper.run(conn, at_us, partitions)


def measured(db: Database, alert_id: str) -> list[str]:
    with db.read() as conn:
        return sorted(s.customer_id for s in store.states_of_alert(conn, alert_id))


def test_a_new_alert_for_every_customer_is_measured_a_chunk_per_run(db: Database) -> None:
    partition, everyone = new_customers(db, 7)
    alert_id = new_alert_for_every_customer(db)
    recorder = Recorder()
    sweeper = AlertSweeper(CHUNK, on_evaluated=recorder)
    mine = frozenset({partition})
    now = now_us()

    assert run(db, sweeper, now, mine) is True
    assert run(db, sweeper, now, mine) is True
    assert run(db, sweeper, now, mine) is False  # the last, partial chunk: the sweep is done
    assert [len(chunk) for chunk in recorder.chunks if chunk] == [3, 3, 1]
    assert sorted(c for chunk in recorder.chunks for c in chunk) == everyone
    assert measured(db, alert_id) == everyone

    evaluated = len(recorder.chunks)
    assert run(db, sweeper, now, mine) is False  # nothing pending: nobody is measured again
    assert all(chunk == [] for chunk in recorder.chunks[evaluated:])


def test_only_the_engine_holding_a_customers_partition_measures_it(db: Database) -> None:
    partition, everyone = new_customers(db, 2)
    alert_id = new_alert_for_every_customer(db)
    others = frozenset(range(PARTITION_COUNT)) - {partition}
    while run(db, AlertSweeper(CHUNK), now_us(), others):
        pass
    assert measured(db, alert_id) == []
    while run(db, AlertSweeper(CHUNK), now_us(), frozenset({partition})):
        pass
    assert measured(db, alert_id) == everyone


def test_a_sweep_resumes_where_it_stopped(db: Database) -> None:
    partition, everyone = new_customers(db, 5)
    alert_id = new_alert_for_every_customer(db)
    mine = frozenset({partition})
    first = Recorder()
    assert run(db, AlertSweeper(CHUNK, on_evaluated=first), now_us(), mine) is True
    # A new evaluator (after a restart) goes on from the stored cursor.
    second = Recorder()
    assert run(db, AlertSweeper(CHUNK, on_evaluated=second), now_us(), mine) is False
    done_first = [c for chunk in first.chunks for c in chunk]
    done_second = [c for chunk in second.chunks for c in chunk]
    assert len(done_first) == CHUNK
    assert sorted(done_first + done_second) == everyone  # each customer once
    assert measured(db, alert_id) == everyone


def test_the_clock_wakes_customers_when_due_a_chunk_at_a_time(db: Database) -> None:
    _partition, everyone = new_customers(db, 4)
    new_alert_for_every_customer(db)
    sweeper = AlertSweeper(CHUNK)
    while run(db, sweeper, now_us()):  # the creation sweep, out of the way
        pass
    due = now_us() + US_PER_HOUR
    with db.write() as conn:
        for customer_id in everyone:
            alert_wakeups.set_wakeup(conn, customer_id, due)

    recorder = Recorder()
    sweeper = AlertSweeper(CHUNK, on_evaluated=recorder)
    assert run(db, sweeper, due - 1) is False
    assert [c for chunk in recorder.chunks for c in chunk] == []  # not yet
    assert run(db, sweeper, due) is True
    assert run(db, sweeper, due) is False
    woken = [c for chunk in recorder.chunks for c in chunk]
    assert sorted(woken) == everyone and len(woken) == len(everyone)
    assert max(len(chunk) for chunk in recorder.chunks) == CHUNK
