"""The statements of an evaluator batch do not grow with the customers it touches.

A batch reads each of its tables once for all of its customers and writes each once: a change
that brings back a statement per customer (a look-up in a loop, a write per row) makes the count
grow with the batch's customers, and this test fails. Counted on the real app's database with an
SQLAlchemy listener; every customer has a contract, a commit and three alerts, as in the bench.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event

from meterline.domain.events import UsageEvent
from meterline.engine.usage_deferral import DeferralSettings
from meterline.store import event_log
from tests.sdk.alert_helpers import (
    Usage,
    contract,
    create_alert,
    customer,
    fixed_product,
    rate_card,
    segment,
    usage_product,
)
from tests.support.inprocess import InProcess


def customers_with_alerts(app: InProcess, count: int, usage: Usage, card: str, fixed: str) -> list[str]:
    """Customers on one rate card, each with a contract, a credit and three alerts."""
    found = []
    for _ in range(count):
        customer_id = customer(app.client)
        contract(app.client, customer_id, card)
        app.client.v1.customers.credits.create(
            customer_id=customer_id, product_id=fixed, access_schedule=segment(1000), priority=1
        )
        for alert_type, threshold in (("spend_threshold_reached", 500), ("low_credit_balance_reached", 10)):
            create_alert(app.client, alert_type=alert_type, threshold=threshold, customer_id=customer_id)
        create_alert(
            app.client,
            alert_type="usage_threshold_reached",
            threshold=50,
            customer_id=customer_id,
            billable_metric_id=usage.metric_id,
        )
        found.append(customer_id)
    return found


def statements_of_a_batch(app: InProcess, customer_ids: list[str], event_type: str) -> int:
    events = [UsageEvent(f"tx-{uuid.uuid4()}", c, event_type, app.now, {"qty": 1}) for c in customer_ids]
    with app.db.log_write() as conn:
        event_log.append(conn, events, app.now)
    counted = 0

    def count(*_args: Any) -> None:
        nonlocal counted
        counted += 1

    event.listen(app.db.engine, "before_cursor_execute", count)
    try:
        assert app.evaluator().run_once().events == len(customer_ids)
    finally:
        event.remove(app.db.engine, "before_cursor_execute", count)
    return counted


@pytest.mark.slow
@pytest.mark.parametrize("journaled", [False, True], ids=["written", "journaled"])
def test_a_batch_runs_as_many_statements_for_twelve_customers_as_for_four(
    app: InProcess, journaled: bool
) -> None:
    """Whether the batch writes its usage rows or journals them (`engine.usage_deferral`: the
    shards' rows in one executemany). Twelve against four: a statement per customer would add
    eight, and each customer costs six API calls to set up (forty took about four CPU-seconds
    more and showed no more: the store chunks its lists of ids by the hundred)."""
    if journaled:
        app.evaluator().usage.settings = DeferralSettings(min_rows=1, max_age_s=3600)
    usage = usage_product(app.client)
    card = rate_card(app.client, (usage.product_id, 1))
    fixed = fixed_product(app.client)
    warm, few, many = (customers_with_alerts(app, n, usage, card, fixed) for n in (2, 4, 12))
    app.run(app.now)  # alerts' creation sweeps and contract changes applied: only usage is left
    statements_of_a_batch(app, warm, usage.event_type)  # the first batch reads the catalog
    assert statements_of_a_batch(app, many, usage.event_type) == statements_of_a_batch(
        app, few, usage.event_type
    )
