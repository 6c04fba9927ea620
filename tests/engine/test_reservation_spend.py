"""The spend reservations are decided on, as the engine stores it (`store.customer_spend`): written
when the engine measures a customer with a hard limit in full, and trusted only while no usage
was counted for the customer since, nor anything else changed that spend depends on."""

from __future__ import annotations

import uuid
from decimal import Decimal

from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import US_PER_SECOND
from meterline.services import spend_limits
from meterline.store import customer_spend, event_log
from tests.sdk.alert_helpers import Usage, billed_contract, billed_customer, contract
from tests.sdk.contract_helpers import USD_CENTS
from tests.support.inprocess import InProcess


def stored(app: InProcess, customer_id: str) -> Decimal | None:
    with app.db.read() as conn:
        return customer_spend.still_holding(conn, [(customer_id, USD_CENTS)], app.now).get(
            (customer_id, USD_CENTS)
        )


def send(app: InProcess, customer_id: str, usage: Usage, qty: int, **properties: str) -> None:
    app.now += US_PER_SECOND
    event = UsageEvent(
        f"tx-{uuid.uuid4()}", customer_id, usage.event_type, app.now, {"qty": qty, **properties}
    )
    with app.db.log_write() as conn:
        event_log.append(conn, [event], app.now)
    app.run(app.now)


def hard_limit(app: InProcess, customer_id: str) -> None:
    """A hard limit far above any spend here, measured by its creation sweep."""
    with app.db.write() as conn:
        spend_limits.set_limits(conn, customer_id, None, {"hard": Decimal(10**9)})
    app.run(app.now)


def test_stored_when_measured_and_not_trusted_after_usage_absorbed(app: InProcess) -> None:
    customer_id, usage = billed_customer(app.client, price=100)
    hard_limit(app, customer_id)
    assert stored(app, customer_id) == 0
    absorbed = app.evaluator().headrooms.absorbed
    send(app, customer_id, usage, 3)  # far from the limit: absorbed, not measured
    assert app.evaluator().headrooms.absorbed == absorbed + 1
    assert stored(app, customer_id) is None  # usage counted since: the caller derives it again
    send(app, customer_id, usage, 2, reservation_id="job-1")  # settles a reservation: measured
    assert stored(app, customer_id) == 500


def test_not_trusted_while_a_recompute_is_pending_nor_past_its_period(app: InProcess) -> None:
    customer_id, usage, card, _contract = billed_contract(app.client, price=100)
    hard_limit(app, customer_id)
    send(app, customer_id, usage, 2, reservation_id="job-1")
    assert stored(app, customer_id) == 200
    contract(app.client, customer_id, card)  # a second contract pricing the same usage
    assert stored(app, customer_id) is None  # the engine has not applied the change yet
    app.run(app.now)
    assert stored(app, customer_id) == 400
    with app.db.read() as conn:
        until = conn.exec_driver_sql("SELECT valid_until_us FROM customer_spend").scalar()
    assert until is not None and until > app.now
    app.now = until
    assert stored(app, customer_id) is None  # the period it was measured in has ended
