"""Archiving an alert in alarm, or resetting it, is applied by the engine, which alone writes
alert states: the API records the request, and nothing changes until the engine's next batch,
which resolves each in-alarm state once, with one `_resolved` notification each."""

from __future__ import annotations

from meterline.domain.timeutil import US_PER_SECOND
from tests.sdk.alert_helpers import billed_customer, create_alert, status, use
from tests.support.inprocess import InProcess
from tests.support.outbox import notifications_for

SPEND = "alerts.spend_threshold_reached"


def types(app: InProcess, customer_id: str) -> list[tuple[str, str]]:
    return [(p["type"], p["properties"]["triggered_by"]) for p in notifications_for(app.url, customer_id)]


def in_alarm(app: InProcess) -> tuple[str, str, str]:
    customer_id, usage = billed_customer(app.client, price=100)
    alert_id = create_alert(
        app.client, alert_type="spend_threshold_reached", threshold=500, customer_id=customer_id
    )
    app.run(app.now)
    use(app.client, customer_id, usage, 6)
    app.run(app.now)
    assert status(app.client, alert_id, customer_id) == ("in_alarm", "usage")
    return customer_id, alert_id, usage.event_type


def test_an_archived_alert_is_resolved_by_the_engine_once(app: InProcess) -> None:
    customer_id, alert_id, _type = in_alarm(app)
    app.client.v1.alerts.archive(id=alert_id)
    app.client.v1.alerts.archive(id=alert_id)  # twice: still one resolution
    assert types(app, customer_id) == [(SPEND, "usage")]  # the API wrote no state, no notification
    app.run(app.now + US_PER_SECOND)
    assert types(app, customer_id) == [(SPEND, "usage"), (SPEND + "_resolved", "alert_archived")]
    app.run(app.now + 2 * US_PER_SECOND)
    assert len(types(app, customer_id)) == 2


def test_a_reset_is_resolved_and_measured_again_in_one_batch_of_the_engine(app: InProcess) -> None:
    customer_id, alert_id, _type = in_alarm(app)
    app.client.v1.customers.alerts.reset(alert_id=alert_id, customer_id=customer_id)
    assert status(app.client, alert_id, customer_id) == ("in_alarm", "usage")  # not applied yet
    app.evaluator().run_once()
    assert status(app.client, alert_id, customer_id) == ("in_alarm", "reevaluation")
    assert types(app, customer_id) == [
        (SPEND, "usage"),
        (SPEND + "_resolved", "reset"),
        (SPEND, "reevaluation"),
    ]
