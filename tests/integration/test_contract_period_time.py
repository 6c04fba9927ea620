"""Every billing period of a contract is finalized by the clock, whatever its customer has: no
usage, no alerts, no recurring or own-invoice periods. The customer is woken when each period
starts (its draft is marked open) and the engine finalizes it once its grace period is over, with
what it bills without usage (an ADVANCE subscription on the usage invoice) or nothing at all.

In-process (tests/support/inprocess.py): the SDK against the app, an `Evaluator` on an injected
clock run at the instants the test chooses. Dates are counted from the current month.
"""

from __future__ import annotations

from decimal import Decimal

from alembic import command
from sqlalchemy import delete, select

from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339, from_us, month_bounds
from meterline.store.migrate import alembic_config
from meterline.store.tables import alert_wakeups
from tests.integration.test_subscription_billing import (
    GRACE,
    by_subscription,
    finalized,
    priced_customer,
    subscription,
)
from tests.sdk.alert_helpers import fixed_product
from tests.sdk.billing_helpers import lines, rate_card
from tests.sdk.helpers import new_customer
from tests.support.inprocess import InProcess

D = Decimal


def test_a_future_contracts_subscription_and_scheduled_charge_are_finalized_with_no_usage(
    app: InProcess,
) -> None:
    client = app.client
    _m0, m1 = month_bounds(app.now)
    _m1, m2 = month_bounds(m1)
    seats, card, customer_id = priced_customer(app, 3000)
    client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=from_us(m1),
        subscriptions=[subscription(seats, "ADVANCE", 2, 2)],  # type: ignore[list-item]
        scheduled_charges_on_usage_invoices="ALL",
        scheduled_charges=[
            {
                "product_id": fixed_product(client),
                "schedule": {"schedule_items": [{"timestamp": from_us(m2), "amount": 2500}]},
            }
        ],
    )
    app.run(app.now)
    assert finalized(app, customer_id) == {}
    # The engine restarts, holding nothing in memory; then the clock passes the first period's
    # end and grace period in one step: no usage, no alert, nothing else wakes the customer.
    app.restart()
    app.run(m2 + GRACE + US_PER_HOUR)
    invoices = finalized(app, customer_id)
    assert list(invoices) == [format_rfc3339(m1)]
    first = invoices[format_rfc3339(m1)]
    assert first["status"] == "FINALIZED"
    # 2 seats x 3,000 for the whole month, in advance.
    ((_subscription_id, shown),) = by_subscription(first).items()
    assert shown == [(format_rfc3339(m1), format_rfc3339(m2), D(2), D(6000), False)]
    # The scheduled charge dated at the period's end, on its usage invoice.
    assert [line["total"] for line in lines(first, "scheduled")] == [D(2500)]
    assert first["total"] == D(6000) + D(2500)


def test_a_contract_with_nothing_to_bill_has_each_period_finalized_at_zero(app: InProcess) -> None:
    client = app.client
    m0, m1 = month_bounds(app.now)
    _m1, m2 = month_bounds(m1)
    card = rate_card(client)
    starting_now, starting_later = new_customer(client), new_customer(client)
    client.v1.contracts.create(customer_id=starting_now, rate_card_id=card, starting_at=from_us(m0))
    client.v1.contracts.create(customer_id=starting_later, rate_card_id=card, starting_at=from_us(m1))
    app.run(app.now)
    # The clock moves by steps: each period is woken at its start, finalized after its grace.
    app.run(m1 + US_PER_HOUR)
    app.run(m1 + GRACE + US_PER_HOUR)
    assert list(finalized(app, starting_now)) == [format_rfc3339(m0)]
    assert finalized(app, starting_later) == {}
    app.run(m2 + GRACE + US_PER_HOUR)
    for customer_id, first in ((starting_now, m0), (starting_later, m1)):
        invoices = finalized(app, customer_id)
        assert invoices[format_rfc3339(m1)]["total"] == D(0)
        assert sorted(invoices) == sorted({format_rfc3339(first), format_rfc3339(m1)})


def test_a_database_from_before_is_upgraded_to_wake_every_contracted_customer(app: InProcess) -> None:
    client = app.client
    m0, m1 = month_bounds(app.now)
    customer_id = new_customer(client)
    client.v1.contracts.create(
        customer_id=customer_id, rate_card_id=rate_card(client), starting_at=from_us(m0)
    )
    app.run(app.now)

    def wakeup() -> int | None:
        with app.db.read() as conn:
            query = select(alert_wakeups.c.due_us).where(alert_wakeups.c.customer_id == customer_id)
            return conn.execute(query).scalar()

    assert wakeup() == m1  # the contract's next period starts
    # As a database from before stored it: nothing wakes this customer.
    with app.db.write() as conn:
        conn.execute(delete(alert_wakeups).where(alert_wakeups.c.customer_id == customer_id))
    command.downgrade(alembic_config(app.db), "0027")
    command.upgrade(alembic_config(app.db), "head")
    assert wakeup() == 0  # woken at once, which schedules its next instant
    app.run(app.now)
    assert wakeup() == m1
