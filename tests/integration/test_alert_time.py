"""Alerts that move with the clock: billing periods rolling over, segments expiring, days running out.

In-process (tests/support/inprocess.py): the app serves the SDK with its background evaluator off,
and the test runs an `Evaluator` on an injected clock at the instants it chooses, so nothing moves
but by the clock and every measure and notification timestamp is exact. The clock starts at the
real present (ingest checks event timestamps against it) and runs ahead from there.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import (
    US_PER_DAY,
    US_PER_HOUR,
    US_PER_SECOND,
    format_rfc3339,
    from_us,
    month_bounds,
)
from meterline.store import event_log
from meterline.store.tables import alert_wakeups
from tests.sdk.alert_helpers import (
    Usage,
    add_credit,
    billed_customer,
    contract,
    create_alert,
    customer,
    rate_card,
    status,
    usage_product,
    use,
)
from tests.sdk.contract_helpers import JAN
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for

D = Decimal
SPEND = "alerts.spend_threshold_reached"
MINUTE = 60 * US_PER_SECOND


def outbox(app: InProcess, customer_id: str, measure: str) -> list[tuple[Any, ...]]:
    """(type, alert id, triggered_by, measure, timestamp) of each of the customer's notifications."""
    return [
        (
            p["type"],
            p["properties"]["alert_id"],
            p["properties"]["triggered_by"],
            p["properties"][measure],
            p["properties"]["timestamp"],
        )
        for p in notifications_for(app.url, customer_id)
    ]


def append(app: InProcess, customer_id: str, usage: Usage, at_us: int, qty: int, **properties: Any) -> None:
    """An event the clock's future may hold (ingest refuses timestamps that far ahead of real time)."""
    event = UsageEvent(f"tx-{uuid.uuid4()}", customer_id, usage.event_type, at_us, {"qty": qty, **properties})
    with app.db.log_write() as conn:
        event_log.append(conn, [event], at_us)


def moment(us: int) -> datetime:
    return from_us(us)


def test_new_billing_period_returns_spend_alerts_to_ok_and_they_fire_again(app: InProcess) -> None:
    client, start = app.client, app.now
    _this_month, next_month = month_bounds(start)
    customer_id, usage = billed_customer(client, price=100)
    alert_id = create_alert(
        client, alert_type="spend_threshold_reached", threshold=5000, customer_id=customer_id
    )
    grouped = usage_product(client, group_key="region")
    by_region = customer(client)
    contract(client, by_region, rate_card(client, (grouped.product_id, 100)))
    per_region = create_alert(
        client,
        alert_type="spend_threshold_reached",
        threshold=5000,
        customer_id=by_region,
        group_values=[{"key": "region"}],
    )
    app.run(start)
    assert status(client, alert_id, customer_id) == ("ok", "alert_created")

    use(client, customer_id, usage, 60)  # 6000 cents this period
    use(client, by_region, grouped, 60, region="eu")
    t1 = start + MINUTE
    app.run(t1)
    assert status(client, alert_id, customer_id) == ("in_alarm", "usage")
    assert status(client, per_region, by_region) == ("in_alarm", "usage")

    # The period ends; no event: the clock's sweep finds the new period's spend at zero.
    t2 = next_month + US_PER_HOUR
    app.run(t2)
    assert status(client, alert_id, customer_id) == ("ok", "new_billing_period")
    assert status(client, per_region, by_region) == ("ok", "new_billing_period")

    append(app, customer_id, usage, next_month + 2 * US_PER_HOUR, 50)  # 5000 cents in the new period
    t3 = next_month + 3 * US_PER_HOUR
    app.run(t3)
    assert status(client, alert_id, customer_id) == ("in_alarm", "usage")
    assert outbox(app, customer_id, "current_spend") == [
        (SPEND, alert_id, "usage", 6000, format_rfc3339(t1)),
        (SPEND + "_resolved", alert_id, "new_billing_period", 0, format_rfc3339(t2)),
        (SPEND, alert_id, "usage", 5000, format_rfc3339(t3)),
    ]
    eu = [{"key": "region", "value": "eu"}]
    assert [(p["type"], p["properties"]["group_values"]) for p in notifications_for(app.url, by_region)] == [
        (SPEND, eu),
        (SPEND + "_resolved", eu),
    ]
    assert outbox(app, by_region, "current_spend")[1][2:4] == ("new_billing_period", 0)


def test_usage_alert_restarts_with_the_period(app: InProcess) -> None:
    client, start = app.client, app.now
    _this_month, next_month = month_bounds(start)
    customer_id = customer(client)  # no contract: calendar months
    usage = usage_product(client)
    alert_id = create_alert(
        client,
        alert_type="usage_threshold_reached",
        threshold=10,
        customer_id=customer_id,
        billable_metric_id=usage.metric_id,
    )
    use(client, customer_id, usage, 12)
    app.run(start)
    assert status(client, alert_id, customer_id) == ("in_alarm", "alert_created")
    t2 = next_month + US_PER_HOUR
    app.run(t2)
    assert status(client, alert_id, customer_id) == ("ok", "new_billing_period")
    assert [row[2:4] for row in outbox(app, customer_id, "current_usage")] == [
        ("alert_created", 12),
        ("new_billing_period", 0),
    ]


def test_an_expiring_credit_segment_fires_low_balance_and_days_alerts(app: InProcess) -> None:
    client, start = app.client, app.now
    hour = start - start % US_PER_HOUR
    expires = hour + 2 * US_PER_DAY
    customer_id, _usage = billed_customer(client)
    credit_id = add_credit(
        client,
        customer_id,
        0,
        access_schedule={
            "schedule_items": [
                {"amount": 1000, "starting_at": JAN, "ending_before": moment(expires)},
                {"amount": 200, "starting_at": JAN, "ending_before": moment(hour + 400 * US_PER_DAY)},
            ]
        },
    )
    [listed] = client.v1.customers.credits.list(customer_id=customer_id, credit_id=credit_id)
    assert listed.access_schedule is not None
    expiring_segment = listed.access_schedule.schedule_items[0].id
    low_balance = create_alert(
        client, alert_type="low_credit_balance_reached", threshold=500, customer_id=customer_id
    )
    low_percentage = create_alert(
        client, alert_type="low_remaining_credit_percentage_reached", threshold=50, customer_id=customer_id
    )
    days_left = create_alert(
        client,
        alert_type="low_remaining_days_for_contract_credit_segment_reached",
        threshold=1,
        customer_id=customer_id,
    )
    app.run(start)
    for alert_id in (low_balance, low_percentage, days_left):
        assert status(client, alert_id, customer_id) == ("ok", "alert_created")

    # Half a day before the expiry: the segment's days alert fires, on the clock alone.
    t1 = expires - US_PER_DAY // 2
    app.run(t1)
    assert status(client, days_left, customer_id) == ("in_alarm", "time")
    assert status(client, low_balance, customer_id) == ("ok", "alert_created")

    # The segment expires: 200 is left, all of what is accessible now (100%).
    t2 = expires + US_PER_HOUR
    app.run(t2)
    assert status(client, low_balance, customer_id) == ("in_alarm", "time")
    assert status(client, low_percentage, customer_id) == ("ok", "alert_created")
    # No accessible segment ends within a day any more.
    assert status(client, days_left, customer_id) == ("ok", "time")

    found = notifications_for(app.url, customer_id)
    assert [(p["type"], p["properties"]["triggered_by"], p["properties"]["timestamp"]) for p in found] == [
        ("alerts.low_remaining_days_for_contract_credit_segment_reached", "time", format_rfc3339(t1)),
        ("alerts.low_remaining_credit_balance_reached", "time", format_rfc3339(t2)),
        (
            "alerts.low_remaining_days_for_contract_credit_segment_reached_resolved",
            "time",
            format_rfc3339(t2),
        ),
    ]
    days, balance, gone = (p["properties"] for p in found)
    assert (days["remaining_days"], days["segment_id"], days["commit_id"]) == (
        D("0.5"),
        expiring_segment,
        credit_id,
    )
    assert balance["remaining_balance"] == 200
    # The segment is gone: nothing to measure.
    assert (gone["segment_id"], gone["commit_id"], gone["remaining_days"]) == (
        expiring_segment,
        credit_id,
        None,
    )


def test_days_remaining_in_plan_reach_the_threshold_as_the_clock_advances(app: InProcess) -> None:
    client, start = app.client, app.now
    hour = start - start % US_PER_HOUR
    ends = hour + 20 * US_PER_DAY
    customer_id = customer(client)
    contract(client, customer_id, rate_card(client), ending_before=moment(ends))
    alert_id = create_alert(
        client, alert_type="low_remaining_days_in_plan_reached", threshold=10, customer_id=customer_id
    )
    app.run(start)
    assert status(client, alert_id, customer_id) == ("ok", "alert_created")

    at_threshold = ends - 10 * US_PER_DAY
    app.run(at_threshold - MINUTE)  # a minute more than ten days left
    assert status(client, alert_id, customer_id) == ("ok", "alert_created")
    app.run(at_threshold)
    assert status(client, alert_id, customer_id) == ("in_alarm", "time")
    app.run(ends - 3 * US_PER_DAY)
    assert outbox(app, customer_id, "remaining_days") == [
        ("alerts.low_remaining_days_in_plan_reached", alert_id, "time", 10, format_rfc3339(at_threshold))
    ]


def test_a_new_alert_is_first_measured_by_its_creation_even_in_a_batch_with_usage_and_the_clock(
    app: InProcess,
) -> None:
    """evaluate_on_create: false holds even when the customer's usage, or the clock's sweep, is
    evaluated in the same evaluator batch as the alert's creation."""
    client, start = app.client, app.now
    customer_id, usage = billed_customer(client, price=100)
    use(client, customer_id, usage, 60)  # 6000 cents
    app.run(start)
    quiet = create_alert(
        client,
        alert_type="spend_threshold_reached",
        threshold=5000,
        customer_id=customer_id,
        evaluate_on_create=False,
    )
    loud = create_alert(client, alert_type="spend_threshold_reached", threshold=5000, customer_id=customer_id)
    use(client, customer_id, usage, 1)
    t1 = start + MINUTE  # the clock's sweep is due again
    app.run(t1)
    assert status(client, quiet, customer_id) == ("in_alarm", "alert_created")
    assert status(client, loud, customer_id) == ("in_alarm", "alert_created")
    assert outbox(app, customer_id, "current_spend") == [
        (SPEND, loud, "alert_created", 6100, format_rfc3339(t1))
    ]

    # Later usage: both stay in alarm, nothing new.
    use(client, customer_id, usage, 1)
    app.run(t1 + MINUTE)
    assert len(notifications_for(app.url, customer_id)) == 1


def wakeups(app: InProcess) -> dict[str, int]:
    with app.db.read() as conn:
        return dict(conn.execute(select(alert_wakeups.c.customer_id, alert_wakeups.c.due_us)).all())


def test_the_clock_wakes_each_customer_at_its_own_next_instant_and_no_one_else(app: InProcess) -> None:
    """Time is not a periodic sweep of every customer: each is re-measured when its own measures
    next move with the clock, so a deployment's size does not make time cost more."""
    client, start = app.client, app.now
    _this_month, next_month = month_bounds(start)
    spender, _usage = billed_customer(client, price=100)
    spend_alert = create_alert(
        client, alert_type="spend_threshold_reached", threshold=5000, customer_id=spender
    )
    ends = start - start % US_PER_HOUR + 20 * US_PER_DAY
    planner = customer(client)
    contract(client, planner, rate_card(client), ending_before=moment(ends))
    days_alert = create_alert(
        client, alert_type="low_remaining_days_in_plan_reached", threshold=10, customer_id=planner
    )
    quiet = customer(client)  # no alerts: nothing to wake for
    app.run(start)
    at_threshold = ends - 10 * US_PER_DAY
    assert wakeups(app) == {spender: next_month, planner: at_threshold}
    assert quiet not in wakeups(app)

    # Before any instant: the clock moves nobody's state, and nobody's instant.
    app.run(min(at_threshold, next_month) - MINUTE)
    assert status(client, spend_alert, spender) == ("ok", "alert_created")
    assert status(client, days_alert, planner) == ("ok", "alert_created")
    assert wakeups(app) == {spender: next_month, planner: at_threshold}

    app.run(at_threshold)
    assert status(client, days_alert, planner) == ("in_alarm", "time")
    assert wakeups(app) == {spender: month_bounds(at_threshold)[1], planner: ends}


def test_a_customer_created_after_an_all_customers_alert_is_measured_without_any_usage(
    app: InProcess,
) -> None:
    client, start = app.client, app.now
    alert_id = create_alert(client, alert_type="spend_threshold_reached", threshold=5000)
    app.run(start)
    newcomer = customer(client)
    assert status(client, alert_id, newcomer)[0] == "evaluating"
    app.run(start + US_PER_SECOND)
    assert status(client, alert_id, newcomer)[0] == "ok"
