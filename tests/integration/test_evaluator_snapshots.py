"""The evaluator keeps customer snapshots between batches (SQLite), and never bills from a stale one.

In-process (tests/support/inprocess.py): the API serves the SDK on its own connections and the
test runs the evaluator between requests, so every change the API makes lands between two
batches of an evaluator that kept the customer's snapshot from the first.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from meterline.domain.timeutil import from_us, month_bounds
from meterline.engine.snapshots import CustomerSnapshots
from tests.sdk.alert_helpers import Usage, add_credit, billed_customer, create_alert, status, use
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for

D = Decimal
SECOND = 1_000_000
SPEND = "alerts.spend_threshold_reached"


def this_months_customer(app: InProcess) -> tuple[str, Usage]:
    """A customer billed 100 cents a unit since this month began: no earlier invoice to finalize
    (finalizing one drops the customer's snapshot, as its invoices changed under it)."""
    month_start, _next = month_bounds(app.now)
    return billed_customer(app.client, price=100, starting_at=from_us(month_start))


def draft_total(app: InProcess, customer_id: str) -> Decimal:
    """The total of the current period's draft (the one the usage lands in)."""
    drafts = list(app.client.v1.customers.invoices.list(customer_id=customer_id, status="DRAFT"))
    return D(str(max(drafts, key=lambda i: i.start_timestamp).total))


def step(app: InProcess) -> None:
    app.run(app.now + SECOND)


def snapshots(app: InProcess) -> CustomerSnapshots:
    return app.evaluator().snapshots


def test_snapshots_are_kept_between_batches_while_nobody_else_writes(app: InProcess) -> None:
    customer_id, usage = this_months_customer(app)
    use(app.client, customer_id, usage, 1)
    step(app)
    hits = snapshots(app).hits
    use(app.client, customer_id, usage, 2)  # ingest writes the event log, not the billing state
    step(app)
    assert draft_total(app, customer_id) == 300
    if app.url.startswith("sqlite"):
        assert snapshots(app).hits > hits
    else:  # no signal that nobody else wrote: a snapshot lives for one batch
        assert snapshots(app).hits == hits == 0


def test_a_credit_added_between_batches_is_drawn_down_at_the_next(app: InProcess) -> None:
    customer_id, usage = this_months_customer(app)
    use(app.client, customer_id, usage, 1)
    step(app)
    assert draft_total(app, customer_id) == 100
    add_credit(app.client, customer_id, 250)
    use(app.client, customer_id, usage, 2)
    step(app)
    assert draft_total(app, customer_id) == 50  # 300 charged, 250 of it drawn from the new credit


def test_an_alert_created_between_batches_is_measured_by_the_next(app: InProcess) -> None:
    customer_id, usage = this_months_customer(app)
    use(app.client, customer_id, usage, 1)
    step(app)
    alert_id = create_alert(
        app.client, alert_type="spend_threshold_reached", threshold=250, customer_id=customer_id
    )
    step(app)
    assert status(app.client, alert_id, customer_id) == ("ok", "alert_created")
    use(app.client, customer_id, usage, 2)
    step(app)
    assert status(app.client, alert_id, customer_id) == ("in_alarm", "usage")


def test_alert_states_the_evaluator_wrote_are_the_ones_it_keeps(app: InProcess) -> None:
    """A crossing, then more usage batch after batch from kept snapshots: each batch starts from
    the alert state the previous one wrote, so the crossing is notified once."""
    customer_id, usage = this_months_customer(app)
    alert_id = create_alert(
        app.client, alert_type="spend_threshold_reached", threshold=250, customer_id=customer_id
    )
    step(app)
    for quantity, expected in ((3, "in_alarm"), (1, "in_alarm"), (1, "in_alarm")):
        use(app.client, customer_id, usage, quantity)
        step(app)
        assert status(app.client, alert_id, customer_id)[0] == expected
    assert [p["type"] for p in notifications_for(app.url, customer_id)] == [SPEND]


def test_a_batch_that_fails_after_measuring_a_crossing_still_notifies_it_once(
    app: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed batch had moved its kept snapshot to in_alarm; its rollback must take that back
    with it, or the batch that retries would see no transition and notify nothing."""
    customer_id, usage = this_months_customer(app)
    alert_id = create_alert(
        app.client, alert_type="spend_threshold_reached", threshold=250, customer_id=customer_id
    )
    step(app)
    evaluator = app.evaluator()
    use(app.client, customer_id, usage, 3)

    def fail(*_args: object) -> None:
        raise RuntimeError("the batch fails after its alerts were measured")

    monkeypatch.setattr(evaluator.sweeps, "run", fail)
    with pytest.raises(RuntimeError):
        evaluator.run_once()
    assert len(evaluator.snapshots) == 0
    monkeypatch.undo()
    step(app)
    assert status(app.client, alert_id, customer_id) == ("in_alarm", "usage")
    assert [p["type"] for p in notifications_for(app.url, customer_id)] == [SPEND]
