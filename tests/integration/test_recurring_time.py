"""A recurring credit on the clock: each period's credit starts when its period does, and the
balance alerts follow, with no event (in-process, an `Evaluator` on an injected clock)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339, from_us, month_bounds
from meterline.store.tables import commits
from tests.sdk.alert_helpers import (
    contract,
    create_alert,
    customer,
    fixed_product,
    rate_card,
    status,
    usage_product,
    use,
)
from tests.sdk.contract_helpers import JAN
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for

D = Decimal
LOW = "alerts.low_remaining_contract_credit_balance_reached"


def test_each_period_s_credit_lifts_the_low_balance_alert_when_its_period_starts(app: InProcess) -> None:
    client, start = app.client, app.now
    this_month, next_month = month_bounds(start)
    _next, after_next = month_bounds(next_month)
    usage = usage_product(client)
    customer_id = customer(client)
    contract(
        client,
        customer_id,
        rate_card(client, (usage.product_id, 1)),
        starting_at=JAN,
        recurring_credits=[
            {
                "product_id": fixed_product(client),
                "priority": 1,
                "starting_at": from_us(this_month),
                "ending_before": from_us(after_next),
                "access_amount": {"unit_price": 1000, "quantity": 1},
                "commit_duration": {"value": 1},
            }
        ],
    )
    low = create_alert(
        client,
        alert_type="low_remaining_contract_credit_balance_reached",
        threshold=500,
        customer_id=customer_id,
    )
    app.run(start)
    assert status(client, low, customer_id) == ("ok", "alert_created")
    use(client, customer_id, usage, 800)  # 800 x 1 cent of this month's 1000
    t1 = start + 60_000_000
    app.run(t1)
    assert status(client, low, customer_id) == ("in_alarm", "usage")

    # Next month's credit starts with its month (and this month's ends): 1000 left, no event.
    t2 = next_month + US_PER_HOUR
    app.run(t2)
    assert status(client, low, customer_id) == ("ok", "time")
    # The last period ends with the recurring credit: nothing is left, and nothing more comes.
    t3 = after_next + US_PER_HOUR
    app.run(t3)
    assert status(client, low, customer_id) == ("in_alarm", "time")
    found = [
        (p["type"], p["properties"]["remaining_balance"], p["properties"]["timestamp"])
        for p in notifications_for(app.url, customer_id)
    ]
    assert found == [
        (LOW, 200, format_rfc3339(t1)),  # 1000 - 800
        (LOW + "_resolved", 1000, format_rfc3339(t2)),
        (LOW, 0, format_rfc3339(t3)),
    ]


def test_an_open_ended_recurring_credit_gets_each_period_s_credit_when_it_starts(app: InProcess) -> None:
    """No end: the engine creates each period's credit when the period starts, and no customer
    alert is needed for the clock to wake it."""
    client, start = app.client, app.now
    this_month, next_month = month_bounds(start)
    _next, after_next = month_bounds(next_month)
    usage = usage_product(client)
    customer_id = customer(client)
    contract_id = contract(
        client,
        customer_id,
        rate_card(client, (usage.product_id, 1)),
        starting_at=JAN,
        recurring_credits=[
            {
                "product_id": fixed_product(client),
                "priority": 1,
                "starting_at": from_us(this_month),
                "access_amount": {"unit_price": 1000, "quantity": 1},
                "commit_duration": {"value": 1},
            }
        ],
    )
    # This month's credit exists from the start; next month's is not created yet.
    assert credit_starts(app, contract_id) == [this_month]
    app.run(start)
    assert credit_starts(app, contract_id) == [this_month]
    app.run(next_month + US_PER_HOUR)  # the wake-up at next month's start creates its credit
    assert credit_starts(app, contract_id) == [this_month, next_month]
    app.run(next_month + 2 * US_PER_HOUR)  # once
    app.run(after_next)
    assert credit_starts(app, contract_id) == [this_month, next_month, after_next]
    [shown] = (
        client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current.credits
        or []
    )
    assert shown.access_schedule is not None
    assert shown.access_schedule.schedule_items[0].amount == 1000  # the API shows what has started by now


def credit_starts(app: InProcess, contract_id: str) -> list[int]:
    """The access starts of the contract's credits, as stored."""
    with app.db.read() as conn:
        rows = conn.execute(select(commits.c.access_segments).where(commits.c.contract_id == contract_id))
        return sorted(row[0][0]["starting_at_us"] for row in rows)
