"""Spend forecast alerts (meterline's extension) on an injected clock: in alarm when the period's
spend, projected to its end at the pace of the alert's window, reaches the threshold; notified
with the projection and when the threshold is reached at that pace; and resolved by the clock
alone, at the instant the projection falls below the threshold or when the usage leaves the
window, with no event to trigger it.

In-process (tests/support/inprocess.py), as tests/integration/test_alert_time.py: the clock
runs ahead of the real present to a moment the test chooses, ten hours into next month.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from metronome import BadRequestError, Metronome

from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, format_rfc3339, month_bounds
from tests.integration.test_alert_time import append
from tests.sdk.alert_helpers import billed_customer, create_alert, customer_alert
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for

D = Decimal
FORECAST = "alerts.spend_forecast_reached"
RESOLVED = "alerts.spend_forecast_reached_resolved"


def next_month(app: InProcess) -> tuple[int, int, int]:
    """Next month's start and end, and its number of days."""
    start = month_bounds(app.now)[1]
    end = month_bounds(start)[1]
    return start, end, (end - start) // US_PER_DAY


def forecast(client: Metronome, customer_id: str, threshold: D, hours: int) -> str:
    return create_alert(
        client,
        alert_type="spend_forecast_reached",
        threshold=float(threshold),
        customer_id=customer_id,
        extra_body={"forecast_window_hours": hours},
    )


def test_a_pace_that_reaches_the_threshold_by_the_period_end_alarms_then_resolves_with_the_clock(
    app: InProcess,
) -> None:
    start, _end, days = next_month(app)
    customer_id, usage = billed_customer(app.client, price=100)
    # 1,000 cents five hours into the month; ten hours in, that is 100 an hour over the 20-hour
    # window (which starts at the month's start until its 21st hour): projected to the end,
    # 1,000 + 100 * (24 * days - 10) = 2,400 * days.
    threshold = D(1200 * days)  # what the projection falls to at the month's 20th hour
    alert_id = forecast(app.client, customer_id, threshold, hours=20)
    app.run(app.now)
    append(app, customer_id, usage, start + 5 * US_PER_HOUR, 10)
    app.run(start + 10 * US_PER_HOUR)
    [alarm] = notifications_for(app.url, customer_id)
    assert alarm["type"] == FORECAST
    properties = alarm["properties"]
    assert properties["alert_type"] == "spend_forecast_reached"
    assert D(properties["projected_spend"]) == 2400 * days
    assert D(properties["current_spend"]) == 1000
    assert properties["forecast_window_hours"] == 20
    # At 100 an hour, the threshold is reached (1,200 * days - 1,000) / 100 hours from now.
    reached = start + 10 * US_PER_HOUR + (12 * days - 10) * US_PER_HOUR
    assert properties["threshold_reached_at"] == format_rfc3339(reached)
    assert properties["timestamp"] == format_rfc3339(start + 10 * US_PER_HOUR)
    assert customer_alert(app.client, alert_id, customer_id).customer_status == "in_alarm"

    # No usage since: the projection falls, reaching the threshold at the 20th hour exactly.
    app.run(start + 20 * US_PER_HOUR)
    assert len(notifications_for(app.url, customer_id)) == 1
    falls_below = start + 20 * US_PER_HOUR + 1
    app.run(falls_below)
    [_alarm, resolved] = notifications_for(app.url, customer_id)
    assert resolved["type"] == RESOLVED
    assert resolved["properties"]["timestamp"] == format_rfc3339(falls_below)
    assert D(resolved["properties"]["projected_spend"]) < threshold
    assert customer_alert(app.client, alert_id, customer_id).customer_status == "ok"


def test_usage_leaving_the_window_resolves_it_on_the_hour(app: InProcess) -> None:
    start, _end, days = next_month(app)
    customer_id, usage = billed_customer(app.client, price=100)
    forecast(app.client, customer_id, D(1000 * days), hours=10)
    app.run(app.now)
    append(app, customer_id, usage, start + 5 * US_PER_HOUR, 10)
    app.run(start + 10 * US_PER_HOUR)  # projected 2,400 * days: in alarm
    assert [n["type"] for n in notifications_for(app.url, customer_id)] == [FORECAST]
    # The 10-hour window leaves the usage behind at the 16th hour: no pace, 1,000 projected.
    app.run(start + 16 * US_PER_HOUR - 1)
    assert len(notifications_for(app.url, customer_id)) == 1
    app.run(start + 16 * US_PER_HOUR)
    [_alarm, resolved] = notifications_for(app.url, customer_id)
    assert resolved["type"] == RESOLVED
    assert D(resolved["properties"]["projected_spend"]) == 1000
    assert resolved["properties"]["threshold_reached_at"] is None  # not at this pace
    assert resolved["properties"]["timestamp"] == format_rfc3339(start + 16 * US_PER_HOUR)


def test_the_default_window_is_a_day(app: InProcess) -> None:
    start, _end, days = next_month(app)
    customer_id, usage = billed_customer(app.client, price=100)
    create_alert(app.client, alert_type="spend_forecast_reached", threshold=1, customer_id=customer_id)
    app.run(app.now)
    append(app, customer_id, usage, start + 2 * US_PER_DAY + 6 * US_PER_HOUR, 24)  # 2,400 cents
    app.run(start + 3 * US_PER_DAY)  # the window: the last 24 hours, so 100 an hour
    [alarm] = notifications_for(app.url, customer_id)
    assert alarm["properties"]["forecast_window_hours"] == 24
    assert D(alarm["properties"]["projected_spend"]) == 2400 + 100 * 24 * (days - 3)
    assert alarm["properties"]["threshold_reached_at"] == format_rfc3339(start + 3 * US_PER_DAY)  # reached


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"alert_type": "spend_threshold_reached", "extra_body": {"forecast_window_hours": 6}},
            "forecast_window_hours: only spend_forecast_reached alerts take one",
        ),
        (
            {"alert_type": "spend_forecast_reached", "extra_body": {"forecast_window_hours": 0}},
            "forecast_window_hours",
        ),
        (
            {"alert_type": "spend_forecast_reached", "extra_body": {"forecast_window_hours": 745}},
            "forecast_window_hours",
        ),
        (
            {"alert_type": "spend_forecast_reached", "extra_body": {"blocking": True}},
            "blocking: spend_forecast_reached alerts warn ahead of time and cannot block access",
        ),
        (
            {"alert_type": "spend_forecast_reached", "group_values": [{"key": "region", "value": "eu"}]},
            "group_values: only spend_threshold_reached alerts take them",
        ),
    ],
)
def test_refused_fields_are_named(app: InProcess, fields: dict[str, object], message: str) -> None:
    customer_id, _usage = billed_customer(app.client, price=100)
    with pytest.raises(BadRequestError) as refused:
        create_alert(app.client, threshold=100, customer_id=customer_id, **fields)
    assert message in str(refused.value)
