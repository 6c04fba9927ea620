"""Balances as invoices draw them down, through the Metronome SDK against a real server: commit and
credit balances with their ledgers, the net balance per credit type, customer-level commits on
contract invoices, and top-ups that lower a draft without any new event.

Every expected amount is worked out by hand in a comment next to it. Each test has a customer,
metric, product and rate card of its own; each invoice read is checked with `check_totals`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from metronome import Metronome

from tests.sdk.billing_helpers import (
    applied_by_commit,
    balances,
    check_totals,
    contract,
    fixed_product,
    flat,
    invoices,
    ledger,
    lines,
    net_balance,
    rate_card,
    segment,
    settled_invoice,
    this_hour_and_period,
    usage_product,
    wait_invoice,
)
from tests.sdk.contract_helpers import USD_CENTS, new_unit
from tests.sdk.helpers import current_hour, event, ingest, new_customer
from tests.support.waiting import wait_for

D = Decimal


def contract_balance_ids(
    client: Metronome, customer_id: str, contract_id: str
) -> tuple[list[str], list[str]]:
    terms = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current
    return [c.id for c in terms.commits], [c.id for c in terms.credits or []]


def test_balances_and_ledgers_follow_the_drawdown(client: Metronome) -> None:
    now, period, _ = this_hour_and_period()
    calls, event_type = usage_product(client)
    card = rate_card(client, flat(calls, 10))
    fixed, customer_id = fixed_product(client), new_customer(client)
    contract_id = contract(
        client,
        customer_id,
        card,
        period,
        commits=[
            {"type": "PREPAID", "product_id": fixed, "priority": 2, "access_schedule": segment(500, period)}
        ],
        credits=[{"product_id": fixed, "priority": 1, "access_schedule": segment(100, period)}],
    )
    [commit], [credit] = contract_balance_ids(client, customer_id, contract_id)
    ingest(client, [event(customer_id, event_type, now) for _ in range(30)])

    # 30 x 10 = 300: the credit (priority 1) gives its 100, the commit the other 200; total 0
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert applied_by_commit(inv) == {credit: 100, commit: 200}
    found = balances(client, customer_id)
    assert set(found) == {commit, credit}
    # commit: 500 - 200 = 300; credit: 100 - 100 = 0
    assert (found[commit]["balance"], found[credit]["balance"]) == (300, 0)
    assert ledger(found[commit]) == [
        ("PREPAID_COMMIT_SEGMENT_START", D(500)),
        ("PREPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-200)),
    ]
    assert ledger(found[credit]) == [
        ("CREDIT_SEGMENT_START", D(100)),
        ("CREDIT_AUTOMATED_INVOICE_DEDUCTION", D(-100)),
    ]
    start, deduction = found[commit]["ledger"]
    schedule_item = found[commit]["access_schedule"]["schedule_items"][0]
    assert start["segment_id"] == deduction["segment_id"] == schedule_item["id"]
    assert start["timestamp"] == schedule_item["starting_at"]
    assert deduction["invoice_id"] == inv["id"]

    ingest(client, [event(customer_id, event_type, now) for _ in range(10)])
    # 40 x 10 = 400: credit 100, commit 300; total 0; the commit keeps 500 - 300 = 200
    wait_invoice(client, customer_id, period, subtotal=D(400), total=D(0))
    found = balances(client, customer_id)
    assert (found[commit]["balance"], found[credit]["balance"]) == (200, 0)
    assert ledger(found[commit])[1:] == [("PREPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-300))]

    assert balances(client, customer_id, include_contract_balances=False) == {}
    assert set(balances(client, customer_id, exclude_zero_balances=True)) == {commit}

    typed = list(
        client.v1.contracts.list_balances(
            customer_id=customer_id,
            include_balance=True,
            include_ledgers=True,
            include_contract_balances=True,
        )
    )
    assert {entry.id: entry.balance for entry in typed} == {commit: 200, credit: 0}
    [shown] = client.v1.contracts.list(
        customer_id=customer_id, include_balance=True, include_ledgers=True
    ).data
    [shown_commit] = shown.current.commits
    assert shown_commit.balance == 200
    assert [entry.type for entry in shown_commit.ledger or []] == [
        "PREPAID_COMMIT_SEGMENT_START",
        "PREPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION",
    ]
    [shown_credit] = shown.current.credits or []
    assert shown_credit.balance == 0


def test_net_balance_sums_what_can_be_spent_in_the_credit_type(client: Metronome) -> None:
    now, period, period_end = this_hour_and_period()
    unit = new_unit(client)
    calls, event_type = usage_product(client)
    card = rate_card(
        client,
        flat(calls, 10),
        credit_type_conversions=[{"custom_credit_type_id": unit, "fiat_per_custom_credit": 2}],
    )
    fixed, customer_id = fixed_product(client), new_customer(client)
    contract_id = contract(
        client,
        customer_id,
        card,
        period,
        commits=[
            {"type": "PREPAID", "product_id": fixed, "priority": 2, "access_schedule": segment(500, period)},
            {
                "type": "POSTPAID",
                "product_id": fixed,
                "priority": 9,
                "access_schedule": segment(1000, period, period_end),
                "invoice_schedule": {
                    "schedule_items": [{"amount": 1000, "timestamp": period_end}],
                    "do_not_invoice": True,
                },
            },
        ],
        credits=[
            {"product_id": fixed, "priority": 1, "access_schedule": segment(120, period)},
            # from the next period on: not accessible yet
            {"product_id": fixed, "priority": 1, "access_schedule": segment(70, period_end)},
            {"product_id": fixed, "priority": 1, "access_schedule": segment(9, period, credit_type_id=unit)},
        ],
    )
    [prepaid, postpaid], [credit, future, in_unit] = contract_balance_ids(client, customer_id, contract_id)
    ingest(client, [event(customer_id, event_type, now) for _ in range(15)])

    # 15 x 10 = 150: the credit gives its 120, the prepaid commit 30; total 0
    inv = wait_invoice(client, customer_id, period, subtotal=D(150), total=D(0))
    assert applied_by_commit(inv) == {credit: 120, prepaid: 30}

    # prepaid 500 - 30 = 470, credit 120 - 120 = 0, the future credit 0 (not accessible yet);
    # the postpaid commit is owed, not held, and the custom-unit credit is another credit type
    assert net_balance(client, customer_id) == 470
    assert net_balance(client, customer_id, invoice_inclusion_mode="FINALIZED_AND_DRAFT") == 470
    # draft invoices left out: nothing is drawn yet, 500 + 120 = 620
    assert net_balance(client, customer_id, invoice_inclusion_mode="FINALIZED") == 620
    assert net_balance(client, customer_id, credit_type_id=unit) == 9
    assert net_balance(client, customer_id, filters=[{"balance_types": ["POSTPAID_COMMIT"]}]) == 1000
    assert net_balance(client, customer_id, filters=[{"balance_types": ["PREPAID_COMMIT"]}]) == 470
    assert net_balance(client, customer_id, filters=[{"ids": [future]}]) == 0

    found = balances(client, customer_id)
    assert {k: v["balance"] for k, v in found.items()} == {
        prepaid: 470,
        postpaid: 1000,
        credit: 0,
        future: 0,
        in_unit: 9,
    }
    assert ledger(found[future]) == []
    assert ledger(found[postpaid]) == [("POSTPAID_COMMIT_INITIAL_BALANCE", D(1000))]
    typed = client.v1.contracts.get_net_balance(customer_id=customer_id, credit_type_id=USD_CENTS).data
    assert (typed.balance, typed.credit_type_id) == (470, USD_CENTS)


def test_customer_level_commit_applies_to_every_contract_of_the_customer(client: Metronome) -> None:
    now, period, period_end = this_hour_and_period()
    a, a_type = usage_product(client)
    b, b_type = usage_product(client)
    fixed, customer_id = fixed_product(client), new_customer(client)
    contract(client, customer_id, rate_card(client, flat(a, 10)), period)
    contract(client, customer_id, rate_card(client, flat(b, 10)), period)
    commit = client.v1.customers.commits.create(
        customer_id=customer_id,
        product_id=fixed,
        type="PREPAID",
        priority=1,
        access_schedule=segment(250, period),  # type: ignore[arg-type]
    ).data.id
    ingest(
        client,
        [
            *(event(customer_id, a_type, now) for _ in range(20)),
            *(event(customer_id, b_type, now) for _ in range(10)),
        ],
    )

    # contract a: 20 x 10 = 200; contract b: 10 x 10 = 100. The one commit's 250 goes to both
    # invoices (whichever is drawn first, each gets some): together they owe 300 - 250 = 50
    found = wait_for(
        lambda: invoices(client, customer_id, starting_on=period, ending_before=period_end),
        lambda invs: (
            sorted(i["subtotal"] for i in invs) == [100, 200] and sum(i["total"] for i in invs) == 50
        ),
    )
    for inv in found:
        check_totals(inv)
        assert set(applied_by_commit(inv)) == {commit}
    assert sum(applied_by_commit(inv)[commit] for inv in found) == 250
    entry = balances(client, customer_id, include_contract_balances=False)[commit]
    assert "contract" not in entry
    assert entry["balance"] == 0
    # 250 at the start, then one deduction per invoice: 250 - 250 = 0
    start, *deductions = ledger(entry)
    assert start == ("PREPAID_COMMIT_SEGMENT_START", D(250))
    assert [t for t, _amount in deductions] == ["PREPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION"] * 2
    assert sorted(amount for _t, amount in deductions) == sorted(-applied_by_commit(i)[commit] for i in found)
    assert net_balance(client, customer_id) == 0


def test_top_up_lowers_the_draft_without_a_new_event(client: Metronome) -> None:
    now, period, _ = this_hour_and_period()
    calls, event_type = usage_product(client)
    card = rate_card(client, flat(calls, 10))
    fixed, customer_id = fixed_product(client), new_customer(client)
    contract(client, customer_id, card, period)
    ingest(client, [event(customer_id, event_type, now) for _ in range(30)])
    # 30 x 10 = 300, nothing to draw from
    wait_invoice(client, customer_id, period, subtotal=D(300), total=D(300))
    assert net_balance(client, customer_id) == 0

    first = client.v1.customers.credits.create(
        customer_id=customer_id,
        product_id=fixed,
        priority=1,
        access_schedule=segment(120, period),  # type: ignore[arg-type]
    ).data.id
    # the new credit covers 120: total 300 - 120 = 180, without any new event
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(180))
    assert applied_by_commit(inv) == {first: 120}
    assert net_balance(client, customer_id) == 0

    second = client.v1.customers.credits.create(
        customer_id=customer_id,
        product_id=fixed,
        priority=2,
        access_schedule=segment(500, period),  # type: ignore[arg-type]
    ).data.id
    # 120 from the first credit, the other 180 from the second: total 0; 500 - 180 = 320 left
    inv = wait_invoice(client, customer_id, period, subtotal=D(300), total=D(0))
    assert applied_by_commit(inv) == {first: 120, second: 180}
    assert net_balance(client, customer_id) == 320
    assert balances(client, customer_id)[second]["balance"] == 320


def test_a_commit_shared_by_two_periods_is_drawn_by_the_earlier_first(client: Metronome) -> None:
    calls, event_type = usage_product(client)
    card = rate_card(client, flat(calls, 10))
    fixed, customer_id = fixed_product(client), new_customer(client)
    now = current_hour()
    # weekly periods from the contract start: the previous one ended 2 h ago, still a draft
    previous = now - timedelta(days=7, hours=2)
    current = previous + timedelta(days=7)
    contract_id = contract(
        client,
        customer_id,
        card,
        previous,
        usage_statement_schedule={"frequency": "WEEKLY"},
        commits=[
            {"type": "PREPAID", "product_id": fixed, "priority": 1, "access_schedule": segment(100, previous)}
        ],
    )
    [commit], _credits = contract_balance_ids(client, customer_id, contract_id)
    ingest(client, [event(customer_id, event_type, now) for _ in range(5)])
    # the current week alone: 5 x 10 = 50, covered: total 0
    wait_invoice(client, customer_id, current, subtotal=D(50), total=D(0))

    ingest(client, [event(customer_id, event_type, previous + timedelta(hours=1)) for _ in range(8)])
    # the previous week, 8 x 10 = 80, draws first: 80 of the 100; the current week gets the
    # other 20 of its 50: total 30
    earlier = wait_invoice(client, customer_id, previous, subtotal=D(80), total=D(0))
    later = wait_invoice(client, customer_id, current, subtotal=D(50), total=D(30))
    assert (applied_by_commit(earlier), applied_by_commit(later)) == ({commit: D(80)}, {commit: D(20)})
    entry = balances(client, customer_id)[commit]
    assert entry["balance"] == 0
    assert sorted(amount for kind, amount in ledger(entry) if kind.endswith("DEDUCTION")) == [-80, -20]

    ingest(client, [event(customer_id, event_type, previous + timedelta(hours=2))])
    # one more late event: the previous week draws 90, the current week 10: total 50 - 10 = 40
    wait_invoice(client, customer_id, previous, subtotal=D(90), total=D(0))
    later = wait_invoice(client, customer_id, current, subtotal=D(50), total=D(40))
    assert applied_by_commit(later) == {commit: 10}


def test_usage_before_a_credit_becomes_accessible_does_not_draw_it(client: Metronome) -> None:
    _now, period, _ = this_hour_and_period()
    calls, event_type = usage_product(client)
    card = rate_card(client, flat(calls, 10))
    fixed, customer_id = fixed_product(client), new_customer(client)
    contract(
        client,
        customer_id,
        card,
        period,
        credits=[
            {"product_id": fixed, "priority": 1, "access_schedule": segment(100, period + timedelta(hours=1))}
        ],
    )
    ingest(client, [event(customer_id, event_type, period)])

    # 1 x 10 = 10, used in the period's first hour, before the credit's access starts: total 10
    inv = settled_invoice(client, customer_id, period)
    assert lines(inv, "applied_commit_or_credit") == []
    assert (inv["subtotal"], inv["total"]) == (10, 10)
