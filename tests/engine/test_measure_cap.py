"""A batch measures at most `batch_customers` customers (`engine.measure_cap`); the rest are measured
by the following batches, and that never changes what the engine does.

The property: the same events, evaluated by an engine whose batches measure at most k customers
and by one that measures every customer in one batch, leave the same alert states, the same
notifications (each once, with the same values and instants), the same stored spend, and no
request behind, whatever k, whatever the usage (negative too, so alerts resolve), and when the
capped engine restarts after its first batch (its deferred customers then wait as requests only).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import US_PER_SECOND
from meterline.services import access, spend_limits
from meterline.store import billing_requests, customer_spend, event_log
from meterline.store.tables import alert_states, alerts, notifications
from tests.sdk.alert_helpers import Usage, billed_customer
from tests.sdk.contract_helpers import USD_CENTS
from tests.support.databases import fresh_database
from tests.support.inprocess import InProcess, in_process

D = Decimal
CUSTOMERS = 6
SOFT, HARD = D(1_000), D(3_000)  # cents: 10 and 30 units at a dollar a unit


@dataclass(frozen=True)
class World:
    """One engine's database, its customers in the order every world creates them."""

    app: InProcess
    customers: list[tuple[str, Usage]]

    def index(self) -> dict[str, int]:
        return {customer_id: i for i, (customer_id, _usage) in enumerate(self.customers)}


def limited_customers(app: InProcess) -> World:
    """`CUSTOMERS` customers at a dollar a unit, each with a soft and a hard spend limit."""
    found = []
    for _ in range(CUSTOMERS):
        customer_id, usage = billed_customer(app.client, price=100)
        with app.db.write() as conn:
            spend_limits.set_limits(conn, customer_id, None, {"soft": SOFT, "hard": HARD})
        found.append((customer_id, usage))
    app.run(app.now)  # the limits' creation sweeps
    return World(app, found)


def send(world: World, usage: list[tuple[int, D]], at_us: int) -> None:
    """The same events, to the same customers by their order, appended in one transaction."""
    events = []
    for i, qty in usage:
        customer_id, product = world.customers[i]
        events.append(
            UsageEvent(f"tx-{uuid.uuid4()}", customer_id, product.event_type, at_us, {"qty": str(qty)})
        )
    with world.app.db.log_write() as conn:
        event_log.append(conn, events, at_us)


def effects(world: World, spent: dict[int, D], with_cause: bool = True) -> dict[str, Any]:
    """What an engine did, by customer order and threshold (ids differ from world to world). The
    stored spend is a cache (absent where usage was absorbed since): where it holds, it must be
    what the customer spent, `spent` (cents, by customer order)."""
    index = world.index()
    with world.app.db.read() as conn:
        thresholds = {row.id: D(row.threshold) for row in conn.execute(alerts.select())}
        states = sorted(
            (index[row.customer_id], thresholds[row.alert_id], row.status, str(row.measure))
            for row in conn.execute(alert_states.select())
        )
        sent = []
        for row in conn.execute(notifications.select().order_by(notifications.c.seq)):
            properties = dict(json.loads(row.payload)["properties"])
            for key in ("customer_id", "alert_id"):
                properties.pop(key)
            if not with_cause:
                properties.pop("triggered_by")
            sent.append((index[row.customer_id], row.type, json.dumps(properties, sort_keys=True)))
        keys = [(customer_id, USD_CENTS) for customer_id in index]
        spends = customer_spend.still_holding(conn, keys, world.app.now)
        wrong = {index[c]: spend for (c, _t), spend in spends.items() if spend != spent[index[c]]}
        waiting = billing_requests.take_requests(conn)  # read (the transaction is rolled back)
        conn.rollback()
    return {
        "states": states,
        "notifications": sorted(sent),
        "wrong spend": wrong,
        "requests": len(waiting),
    }


@pytest.fixture
def capped(backend: str, tmp_path: Path) -> Iterator[InProcess]:
    """A second world, on the same backend, for the engine whose batches are capped."""
    with fresh_database(backend, tmp_path) as url, in_process(url) as app:
        yield app


# Per step: the events of one batch, (customer, quantity) pairs; negative quantities let spend
# fall back under a limit, which resolves its alert.
batches = st.lists(
    st.lists(
        st.tuples(st.integers(0, CUSTOMERS - 1), st.decimals(min_value=-15, max_value=25, places=0)),
        min_size=1,
        max_size=10,
    ),
    min_size=1,
    max_size=3,
)
# Few examples: each is two engines' batches on two databases; the rule is in Python, the same on
# both backends, and PostgreSQL shows that its requests (the merge of their instants) behave alike.
EXAMPLES = {"sqlite": 10, "postgres": 4}


@pytest.mark.slow
@pytest.mark.parametrize("absorbing", [True, False], ids=["headrooms", "no-headrooms"])
def test_a_capped_batch_has_the_uncapped_batch_effects(
    app: InProcess, capped: InProcess, backend: str, absorbing: bool
) -> None:
    # Without headrooms every customer a batch touches is measured, so the cap is met at once;
    # with them, most usage here is absorbed, and a deferred customer's next events must not be.
    capped.evaluator().headrooms.capacity = 1_000_000 if absorbing else 0
    whole, parts = limited_customers(app), limited_customers(capped)
    capped.now = app.now  # notifications carry the engine's clock: the same in both
    spent = dict.fromkeys(range(CUSTOMERS), D(0))
    restarted = []  # once the capped engine has restarted, its notifications may name another cause

    @settings(
        max_examples=EXAMPLES[backend],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(steps=batches, most=st.integers(1, CUSTOMERS), restart=st.booleans())
    def check(steps: list[list[tuple[int, D]]], most: int, restart: bool) -> None:
        if restart:
            restarted.append(True)
        for usage in steps:
            app.now = capped.now = app.now + US_PER_SECOND
            send(whole, usage, app.now)
            send(parts, usage, app.now)
            for i, qty in usage:
                spent[i] += qty * 100
            app.run(app.now)
            capped.evaluator().cap.most = most
            if restart:
                capped.evaluator().run_once()
                capped.restart()  # what it kept in memory is gone; its requests are not
                capped.evaluator().cap.most = most
                capped.evaluator().headrooms.capacity = 1_000_000 if absorbing else 0
            capped.run(capped.now)
            found = effects(parts, spent, with_cause=not restarted)
            assert found == effects(whole, spent, with_cause=not restarted)
            assert found["wrong spend"] == {} and found["requests"] == 0

    check()


def test_a_deferred_customer_is_measured_by_the_next_batch_and_access_waits_for_it(app: InProcess) -> None:
    world = limited_customers(app)
    evaluator = app.evaluator()
    evaluator.cap.most = 2
    app.now += US_PER_SECOND
    arrived = app.now
    send(world, [(i, D(31)) for i in range(CUSTOMERS)], arrived)  # every customer past its hard limit

    first = evaluator.run_once()
    assert first.deferred == CUSTOMERS - 2
    refs = [customer_id for customer_id, _usage in world.customers]
    decided = access.decisions(app.db, refs, app.now + US_PER_SECOND)
    blocked = [d for d in decided if not d.has_access]
    assert len(blocked) == 2  # the two measured first
    for decision in decided:
        if decision.has_access:  # not measured yet: the decision says it is older than the usage
            assert decision.as_of_us < arrived
    with app.db.read() as conn:
        keys = [(customer_id, USD_CENTS) for customer_id in refs]
        assert len(customer_spend.still_holding(conn, keys, app.now)) == 2  # the others' not trusted

    while evaluator.run_once().deferred:
        pass
    decided = access.decisions(app.db, refs, app.now + US_PER_SECOND)
    assert [d.has_access for d in decided] == [False] * CUSTOMERS
    with app.db.read() as conn:
        rows = conn.execute(notifications.select()).fetchall()
    crossed = [
        json.loads(r.payload)["properties"] for r in rows if r.type == "alerts.spend_threshold_reached"
    ]
    assert len(crossed) == 2 * CUSTOMERS  # soft and hard, each customer, once
    assert {p["triggered_by"] for p in crossed} == {"usage"}
