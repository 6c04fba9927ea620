"""The engine skips measuring customers whose usage cannot move an alert (`engine.headroom`), and
that never costs a transition.

The property: after every batch, every alert state of the customer says what measuring the
customer from scratch says (its drafts derived from the aggregates, each alert measured, then
`breached`), for any tiered prices, commit, thresholds and usage, negative usage included, and
across engine restarts (a new engine reads the stored headrooms that still hold); and as time
passes with no usage at all (a spend forecast moves with the clock alone).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.alerts import IN_ALARM, breached, kind_of
from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import US_PER_SECOND, hour_floor
from meterline.engine import billing
from meterline.engine.alert_measures import CustomerView, measurements
from meterline.store import alerts as alert_store
from meterline.store import event_log
from tests.sdk.alert_helpers import (
    Usage,
    add_commit,
    contract,
    create_alert,
    customer,
    usage_product,
)
from tests.sdk.contract_helpers import JAN
from tests.support.inprocess import InProcess

D = Decimal
prices = st.decimals(min_value=0, max_value=300, places=2)
quantities = st.decimals(min_value=-20, max_value=150, places=2)


@st.composite
def tiers(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=1, max_value=3))
    found = [{"price": float(draw(prices)), "size": draw(st.integers(1, 60))} for _ in range(count)]
    found[-1].pop("size")
    return found


def tiered_card(app: InProcess, usage: Usage, tier_list: list[dict[str, Any]]) -> str:
    card = app.client.v1.contracts.rate_cards.create(name=f"card {uuid.uuid4()}").data.id
    app.client.v1.contracts.rate_cards.rates.add(
        rate_card_id=card,
        product_id=usage.product_id,
        entitled=True,
        rate_type="TIERED",
        tiers=tier_list,  # type: ignore[arg-type]
        starting_at=JAN,
    )
    return card


@dataclass(frozen=True)
class Billed:
    customer_id: str
    usage: Usage
    card: str


def customer_with_alerts(app: InProcess, tier_list: list[dict[str, Any]], thresholds: dict[str, D]) -> Billed:
    usage = usage_product(app.client)
    customer_id = customer(app.client)
    card = tiered_card(app, usage, tier_list)
    contract(app.client, customer_id, card)
    add_commit(app.client, customer_id, float(thresholds["commit"]))
    for alert_type in (
        "spend_threshold_reached",
        "monthly_invoice_total_spend_threshold_reached",
        "low_remaining_commit_balance_reached",
        "low_remaining_commit_percentage_reached",
    ):
        create_alert(
            app.client,
            alert_type=alert_type,
            threshold=float(thresholds[alert_type]),
            customer_id=customer_id,
        )
    create_alert(
        app.client,
        alert_type="usage_threshold_reached",
        threshold=float(thresholds["usage_threshold_reached"]),
        customer_id=customer_id,
        billable_metric_id=usage.metric_id,
    )
    create_alert(
        app.client,
        alert_type="spend_forecast_reached",
        threshold=float(thresholds["spend_forecast_reached"]),
        customer_id=customer_id,
        extra_body={"forecast_window_hours": int(thresholds["forecast_window_hours"])},
    )
    app.run(app.now)  # the alerts' creation sweeps
    return Billed(customer_id, usage, card)


def send(app: InProcess, customer_id: str, usage: Usage, quantities: list[D]) -> None:
    app.now += US_PER_SECOND
    events = [
        UsageEvent(f"tx-{uuid.uuid4()}", customer_id, usage.event_type, app.now, {"qty": str(q)})
        for q in quantities
    ]
    with app.db.log_write() as conn:
        event_log.append(conn, events, app.now)
    app.run(app.now)


def assert_states_are_what_measuring_says(app: InProcess, customer_id: str) -> None:
    window = billing.billing_window(app.now, billing.DEFAULT_OPEN_HORIZON_US)
    with app.db.read() as conn:
        state = billing.with_drafts(conn, [customer_id], window)[customer_id]
        stored = alert_store.states_for_customers(conn, [customer_id])[customer_id]
        view = CustomerView(conn, customer_id, app.now, state)
        for alert in state.alerts:
            for measurement in measurements(alert, view):
                kept = stored[(alert.id, measurement.scope)]
                truth = breached(kind_of(alert.alert_type), measurement.value, alert.threshold)
                assert (kept.status == IN_ALARM) == truth, (alert.alert_type, measurement, kept)


thresholds = st.fixed_dictionaries(
    {
        "commit": st.decimals(min_value=1, max_value=5000, places=0),
        "spend_threshold_reached": st.decimals(min_value=1, max_value=20000, places=0),
        "monthly_invoice_total_spend_threshold_reached": st.decimals(min_value=1, max_value=20000, places=0),
        "low_remaining_commit_balance_reached": st.decimals(min_value=0, max_value=5000, places=0),
        "low_remaining_commit_percentage_reached": st.decimals(min_value=1, max_value=99, places=0),
        "usage_threshold_reached": st.decimals(min_value=1, max_value=400, places=0),
        "spend_forecast_reached": st.decimals(min_value=1, max_value=400_000, places=0),
        "forecast_window_hours": st.decimals(min_value=1, max_value=48, places=0),
    }
)


# What may happen between two measurements: usage (a batch of quantities), an engine restart (a
# crash: nothing kept in memory), a new commit, a new spend alert, a price change (and usage), a
# second contract on the same usage, time passing with no usage (minutes).
steps = st.one_of(
    st.tuples(st.just("time"), st.integers(min_value=1, max_value=36 * 60)),
    st.tuples(st.just("usage"), st.lists(quantities, min_size=1, max_size=4)),
    st.tuples(st.just("restart"), st.none()),
    st.tuples(st.just("commit"), st.decimals(min_value=1, max_value=3000, places=0)),
    st.tuples(st.just("alert"), st.decimals(min_value=1, max_value=20000, places=0)),
    st.tuples(st.just("price"), prices),
    st.tuples(st.just("contract"), tiers()),
)


# PostgreSQL runs fewer examples than SQLite. The rule (a skipped customer never hides a
# transition) is the evaluator's, in Python, the same on both databases, and SQLite explores it with
# the full count; on PostgreSQL each example shows that the same reads and writes (stored
# headrooms, alert states, aggregates) hold there too, which a handful show as well as 25 (each
# example is dozens of queries).
EXAMPLES = {"sqlite": 25, "postgres": 8}


@pytest.mark.slow
def test_alert_states_always_match_a_measurement_from_scratch(app: InProcess, backend: str) -> None:
    @settings(max_examples=EXAMPLES[backend])
    @given(tier_list=tiers(), limits=thresholds, changes=st.lists(steps, min_size=1, max_size=8))
    def check(tier_list: list[dict[str, Any]], limits: dict[str, D], changes: list[tuple[str, Any]]) -> None:
        billed = customer_with_alerts(app, tier_list, limits)
        customer_id, usage, card = billed.customer_id, billed.usage, billed.card
        for step, value in changes:
            apply_step(app, customer_id, usage, card, step, value)
            app.run(app.now)
            assert_states_are_what_measuring_says(app, customer_id)

    check()


def apply_step(app: InProcess, customer_id: str, usage: Usage, card: str, step: str, value: Any) -> None:
    if step == "usage":
        send(app, customer_id, usage, value)
    elif step == "restart":
        restart(app)
    elif step == "time":
        app.now += value * 60 * US_PER_SECOND
    elif step == "commit":
        add_commit(app.client, customer_id, float(value))
    elif step == "contract":  # another contract pricing the same usage: both invoices move
        contract(app.client, customer_id, tiered_card(app, usage, value))
    elif step == "alert":
        create_alert(
            app.client,
            alert_type="spend_threshold_reached",
            threshold=float(value),
            customer_id=customer_id,
        )
    else:
        # A price change is measured at the customer's next usage (no customer asks for it):
        # the headrooms computed under the old catalog must not hide that usage.
        reprice(app, card, usage, value)
        send(app, customer_id, usage, [D(0)])


def reprice(app: InProcess, card: str, usage: Usage, price: D) -> None:
    """A new flat price from this hour on (the catalog changes: no customer asks to be measured)."""
    app.client.v1.contracts.rate_cards.rates.add(
        rate_card_id=card,
        product_id=usage.product_id,
        entitled=True,
        rate_type="FLAT",
        price=float(price),
        starting_at=datetime.fromtimestamp(hour_floor(app.now) / US_PER_SECOND, tz=UTC),
    )


def restart(app: InProcess) -> None:
    """A new engine on the same database: nothing kept in memory."""
    app.evaluator().leave()
    app._evaluator = None


# Far from every threshold at a dollar a unit: 1,000 units before the spend threshold.
FAR_LIMITS = {
    "commit": D(1_000_000),
    "spend_threshold_reached": D(100_000),
    "monthly_invoice_total_spend_threshold_reached": D(10_000_000),
    "low_remaining_commit_balance_reached": D(1),
    "low_remaining_commit_percentage_reached": D(1),
    "usage_threshold_reached": D(100_000),
    # Far at any pace: even a second into the period, when spend counts for 2.6 million times
    # as much in the projection.
    "spend_forecast_reached": D(10**15),
    "forecast_window_hours": D(24),
}
DOLLAR_A_UNIT = [{"price": 100}]


def test_usage_far_from_every_threshold_is_not_measured_and_a_crossing_still_notifies(app: InProcess) -> None:
    billed = customer_with_alerts(app, DOLLAR_A_UNIT, FAR_LIMITS)
    customer_id, usage = billed.customer_id, billed.usage
    # The contract started long ago: last month's invoice is finalized at the first batch, and the
    # customer measured in full at the next.
    for _ in range(2):
        send(app, customer_id, usage, [D(1)])
    before = app.evaluator().headrooms.absorbed
    for _ in range(5):
        send(app, customer_id, usage, [D(10)])  # 52 units in all, 5,200 cents: far from 100,000
    assert app.evaluator().headrooms.absorbed == before + 5
    assert_states_are_what_measuring_says(app, customer_id)
    send(app, customer_id, usage, [D(950)])  # 1,002 units: 100,200 cents, past the spend threshold
    assert_states_are_what_measuring_says(app, customer_id)
    with app.db.read() as conn:
        stored = alert_store.states_for_customers(conn, [customer_id])[customer_id]
    assert [s.status for s in stored.values()].count(IN_ALARM) == 1


def test_a_new_engine_reads_the_headroom_of_customers_whose_usage_did_not_move_since(app: InProcess) -> None:
    still, moved = (customer_with_alerts(app, DOLLAR_A_UNIT, FAR_LIMITS) for _ in range(2))
    for billed in (still, moved):
        send(app, billed.customer_id, billed.usage, [D(1)])  # measured in full: its headroom is stored
    send(app, moved.customer_id, moved.usage, [D(1)])  # absorbed: its stored headroom no longer holds
    restart(app)
    send(app, still.customer_id, still.usage, [D(1)])
    assert app.evaluator().headrooms.absorbed == 1  # read from the database, not measured
    send(app, moved.customer_id, moved.usage, [D(1)])
    assert app.evaluator().headrooms.absorbed == 1  # measured in full, as its usage moved
    for billed in (still, moved):
        assert_states_are_what_measuring_says(app, billed.customer_id)


def test_a_new_engine_loads_the_headrooms_that_still_hold_before_their_customers_next_events(
    app: InProcess,
) -> None:
    """At a start or a take-over the engine loads stored headrooms a slice per batch, so that a
    customer's first event afterwards costs no read; one whose usage moved since is left out."""
    billed = [customer_with_alerts(app, DOLLAR_A_UNIT, FAR_LIMITS) for _ in range(3)]
    for one in billed:
        send(app, one.customer_id, one.usage, [D(1)])  # measured: headroom stored
    moved = billed[0]
    send(app, moved.customer_id, moved.usage, [D(1)])  # absorbed: its stored one no longer holds
    restart(app)
    engine = app.evaluator()
    engine.headrooms.warm_slice = 1
    batches = 0
    while engine.run_once().more_work:
        batches += 1
    assert batches >= 2  # a slice at a time, each reported as more work to do
    assert [c.customer_id in engine.headrooms for c in billed] == [False, True, True]
    for one in billed[1:]:
        send(app, one.customer_id, one.usage, [D(1)])
    assert engine.headrooms.absorbed == 2
    for one in billed:
        assert_states_are_what_measuring_says(app, one.customer_id)
