"""An idle engine reads ahead the state of customers whose headroom is nearly used up
(`engine.read_ahead`), so that the batch their crossing lands in reads no state; and that never
changes what the crossing notifies.

On SQLite the states read ahead are kept until the crossing (the snapshots are); on PostgreSQL
snapshots live one batch, so nothing is read ahead, and the crossing is measured as before.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from meterline.domain.alerts import IN_ALARM
from meterline.engine import read_ahead
from meterline.engine.read_ahead import ReadAhead
from meterline.engine.snapshots import CustomerSnapshots
from meterline.store import alerts as alert_store
from meterline.store.db import Database
from meterline.store.tables import notifications
from tests.engine.test_headroom import (
    DOLLAR_A_UNIT,
    FAR_LIMITS,
    Billed,
    assert_states_are_what_measuring_says,
    customer_with_alerts,
    restart,
    send,
)
from tests.engine.test_snapshots import new_customers
from tests.sdk.alert_helpers import customer
from tests.support.inprocess import InProcess

D = Decimal
# 100 units at a dollar a unit cross the spend threshold; every other threshold stays far.
NEAR_LIMITS = {**FAR_LIMITS, "spend_threshold_reached": D(10_000)}


def near_a_threshold(app: InProcess, *, restarted: bool) -> Billed:
    """A customer measured, then brought by absorbed usage to 90 units: 10 more cross.
    `restarted`: the engine restarts after the measurement, so that it has the customer's stored
    headroom and not its state (as after a start, or seeded customers)."""
    billed = customer_with_alerts(app, DOLLAR_A_UNIT, NEAR_LIMITS)
    # The contract started long ago: last month's invoice is finalized at the first batch, and
    # the customer measured in full at the next (its headroom computed then).
    for _ in range(2):
        send(app, billed.customer_id, billed.usage, [D(1)])
    if restarted:
        restart(app)
    absorbed = app.evaluator().headrooms.absorbed
    for _ in range(4):
        send(app, billed.customer_id, billed.usage, [D(22)])  # 90 units: a fifth 22 would not fit
    assert app.evaluator().headrooms.absorbed == absorbed + 4
    return billed


def notified(app: InProcess, customer_id: str) -> list[str]:
    with app.db.read() as conn:
        rows = conn.execute(notifications.select().where(notifications.c.customer_id == customer_id))
        return [row.type for row in rows]


def in_alarm(app: InProcess, customer_id: str) -> int:
    with app.db.read() as conn:
        stored = alert_store.states_for_customers(conn, [customer_id])[customer_id]
    return [s.status for s in stored.values()].count(IN_ALARM)


def cross(app: InProcess, billed: Billed) -> int:
    """The crossing event evaluated; returns how many states its batches read."""
    engine = app.evaluator()
    misses = engine.snapshots.misses
    send(app, billed.customer_id, billed.usage, [D(22)])  # 112 units: past 100
    assert notified(app, billed.customer_id) == ["alerts.spend_threshold_reached"]
    assert in_alarm(app, billed.customer_id) == 1
    assert_states_are_what_measuring_says(app, billed.customer_id)
    return engine.snapshots.misses - misses


def test_a_customer_near_a_threshold_is_read_ahead_and_its_crossing_reads_no_state(
    app: InProcess, backend: str
) -> None:
    billed = near_a_threshold(app, restarted=True)
    engine = app.evaluator()
    # The batches that absorbed the usage were followed by idle ones (`InProcess.run` runs until
    # nothing is left to do): the near customer's state was read then, where snapshots are kept.
    kept = backend == "sqlite"
    assert engine.snapshots.read_ahead == (1 if kept else 0)
    assert cross(app, billed) == (0 if kept else 1)
    assert len(engine.read_ahead) == 0  # measured: no longer waiting to be read


def test_a_state_read_ahead_is_read_again_after_another_writer_commits(app: InProcess, backend: str) -> None:
    billed = near_a_threshold(app, restarted=False)
    engine = app.evaluator()
    assert engine.snapshots.read_ahead == 0  # its state is kept from its measurement: no read
    customer(app.client)  # the API writes: every snapshot is dropped at the next batch
    app.run(app.now)  # which, idle, reads the near customer's state again
    kept = backend == "sqlite"
    assert engine.snapshots.read_ahead == (1 if kept else 0)
    assert cross(app, billed) == (0 if kept else 1)


def test_customers_far_from_every_threshold_are_not_read_ahead(app: InProcess) -> None:
    billed = customer_with_alerts(app, DOLLAR_A_UNIT, FAR_LIMITS)
    for _ in range(2):
        send(app, billed.customer_id, billed.usage, [D(1)])
    restart(app)
    for _ in range(3):
        send(app, billed.customer_id, billed.usage, [D(10)])
    engine = app.evaluator()
    assert engine.headrooms.absorbed == 3
    assert engine.snapshots.read_ahead == 0
    assert len(engine.read_ahead) == 0


def reading_ahead(db: Database, snapshots: CustomerSnapshots, ahead: ReadAhead, arrived: bool) -> bool:
    """One idle batch reading ahead; `arrived`: usage is waiting the whole time."""
    with db.write() as conn:
        snapshots.begin(conn)
        return ahead.read(conn, snapshots, lambda: arrived)


def test_reading_ahead_stops_after_a_slice_once_usage_is_waiting(
    db: Database, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_ahead, "SLICE", 2)
    customer_ids = new_customers(db, 5)
    snapshots, ahead = CustomerSnapshots(capacity=20), ReadAhead(capacity=20)
    ahead.note(customer_ids, ())
    if backend != "sqlite":  # snapshots live one batch: nothing to read into
        assert not reading_ahead(db, snapshots, ahead, arrived=False)
        assert snapshots.read_ahead == 0
        return
    assert reading_ahead(db, snapshots, ahead, arrived=True)  # one slice, then the usage's batch
    assert snapshots.read_ahead == 2
    assert not reading_ahead(db, snapshots, ahead, arrived=False)  # the rest, slice after slice
    assert snapshots.read_ahead == 5
    assert not reading_ahead(db, snapshots, ahead, arrived=False)  # all kept: nothing read again
    assert snapshots.read_ahead == 5
    assert len(snapshots) == 5
