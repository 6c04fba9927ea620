"""A POSTPAID commit's true-up: on its invoice date, a TRUEUP invoice bills what usage left of the
commit (never below zero; no invoice when usage reached it). A DRAFT as of now from the moment
the commit exists, finalized once its date and the grace period are over, exactly once whatever
restarts; the commit's ledger shows it as POSTPAID_COMMIT_TRUEUP; `invoice_total_reached` alerts
filtered to TRUEUP see its draft; voiding it bills nothing again; a transition with
`future_invoice_behavior.trueup: REMOVE` removes it.

In-process (tests/support/inprocess.py): the SDK against the app, on SQLite and PostgreSQL, an
`Evaluator` on an injected clock run at the instants the test chooses. Usage is sent through the
SDK in the current hour; the commit's access runs from this month's start to the next month's,
its true-up dated there.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meterline.domain.timeutil import format_rfc3339, from_us
from tests.integration.test_scheduled_invoice_time import GRACE_US, invoices_of, item_bills, months
from tests.sdk.alert_helpers import (
    Usage,
    create_alert,
    customer,
    fixed_product,
    rate_card,
    status,
    usage_product,
    use,
)
from tests.sdk.billing_helpers import Json, balances, ledger
from tests.support.inprocess import InProcess

D = Decimal
PRICE = 100  # cents per unit of usage


def postpaid(product: str, amount: float, start: int, end: int, **invoice: Any) -> dict[str, Any]:
    """A POSTPAID commit of `amount` over [start, end), trued up at `end`."""
    return {
        "type": "POSTPAID",
        "product_id": product,
        "access_schedule": {
            "schedule_items": [
                {"amount": amount, "starting_at": from_us(start), "ending_before": from_us(end)}
            ]
        },
        "invoice_schedule": {"schedule_items": [{"timestamp": from_us(end), "amount": amount}], **invoice},
    }


def contracted(app: InProcess, amount: float | None, **fields: Any) -> tuple[str, str, Usage, str]:
    """(customer, contract, usage, FIXED product): a contract from this month, billing PRICE a
    unit of usage, with a postpaid commit of `amount` (None: none) over this month."""
    client = app.client
    this_month, first, _second = months(app)
    customer_id, usage, product = customer(client), usage_product(client), fixed_product(client)
    commits = [] if amount is None else [postpaid(product, amount, this_month, first)]
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=rate_card(client, (usage.product_id, PRICE)),
        starting_at=from_us(this_month),
        commits=commits,
        **fields,
    ).data.id
    return customer_id, contract_id, usage, product


def committed(app: InProcess, amount: float, **fields: Any) -> tuple[str, str, str, Usage]:
    """(customer, contract, commit, usage) of a contract from this month with a postpaid commit."""
    customer_id, contract_id, usage, _product = contracted(app, amount, **fields)
    view = app.client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    (commit,) = view.current.commits
    return customer_id, contract_id, commit.id, usage


def trueups(app: InProcess, customer_id: str) -> list[Json]:
    return list(invoices_of(app, customer_id, type="TRUEUP").values())


def trueup_invoice_id(app: InProcess, customer_id: str, contract_id: str) -> str | None:
    """The `invoice_id` the contract shows on its postpaid commit's invoice schedule item."""
    view = app.client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    (commit,) = view.current.commits
    assert commit.invoice_schedule is not None
    (item,) = commit.invoice_schedule.schedule_items or []
    return item.invoice_id


def test_the_trueup_bills_what_usage_left_of_the_commit_once_after_its_date_and_grace(app: InProcess) -> None:
    client = app.client
    _this_month, first, _second = months(app)
    customer_id, contract_id, commit, usage = committed(app, 1000)
    use(client, customer_id, usage, 3)
    app.run(app.now)

    # 3 units x 100 = 300 drawn from the 1000 committed: the true-up's draft bills 700 as of now.
    (draft,) = trueups(app, customer_id)
    assert (draft["status"], draft["total"], draft["subtotal"]) == ("DRAFT", D(700), D(700))
    assert draft["start_timestamp"] == draft["end_timestamp"] == format_rfc3339(first)
    (line,) = draft["line_items"]
    assert line["type"] == "postpaid_trueup"
    assert (line["total"], line["quantity"], line["unit_price"]) == (D(700), D(1), D(700))
    assert (line["commit_id"], line["postpaid_commit"], line["commit_type"]) == (
        commit,
        {"id": commit},
        "PostpaidCommit",
    )
    assert line["product_type"] == "FixedProductListItem"
    # The usage invoice bills the usage in full (a postpaid commit's drawdown is not subtracted).
    (usage_invoice,) = invoices_of(app, customer_id, type="USAGE").values()
    assert (usage_invoice["total"], usage_invoice["subtotal"]) == (D(300), D(300))
    # Until the true-up is billed, the commit holds what usage left of it.
    assert balances(client, customer_id)[commit]["balance"] == D(700)

    use(client, customer_id, usage, 2)  # 500 drawn now: the draft follows
    app.run(app.now + 1)
    assert [t["total"] for t in trueups(app, customer_id)] == [D(500)]

    assert trueup_invoice_id(app, customer_id, contract_id) is None  # shown once billed
    app.run(first)  # on its date the true-up still waits for the grace period, as the usage does
    assert [t["status"] for t in trueups(app, customer_id)] == ["DRAFT"]
    app.run(first + GRACE_US)
    (final,) = trueups(app, customer_id)
    assert (final["id"], final["status"], final["total"]) == (draft["id"], "FINALIZED", D(500))
    assert [line["total"] for line in final["line_items"]] == [D(500)]
    assert trueup_invoice_id(app, customer_id, contract_id) == final["id"]

    found = balances(client, customer_id)[commit]
    assert ledger(found) == [
        ("POSTPAID_COMMIT_INITIAL_BALANCE", D(1000)),
        ("POSTPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-500)),
        ("POSTPAID_COMMIT_TRUEUP", D(-500)),
    ]
    assert found["ledger"][-1]["invoice_id"] == final["id"]
    assert found["balance"] == 0

    app.restart()
    app.run(first + 2 * GRACE_US)
    app.restart()
    app.run(first + 40 * GRACE_US)
    assert [(t["id"], t["total"]) for t in trueups(app, customer_id)] == [(final["id"], D(500))]
    assert len(item_bills(app, customer_id)) == 1


def test_usage_reaching_the_commit_leaves_no_trueup_invoice(app: InProcess) -> None:
    client = app.client
    _this_month, first, _second = months(app)
    customer_id, _contract, commit, usage = committed(app, 200)
    use(client, customer_id, usage, 3)  # 300 of usage: more than the 200 committed
    app.run(app.now)
    assert trueups(app, customer_id) == []
    app.run(first + GRACE_US)
    app.restart()
    app.run(first + 2 * GRACE_US)
    assert trueups(app, customer_id) == []
    (usage_invoice,) = invoices_of(app, customer_id, type="USAGE").values()
    assert (usage_invoice["status"], usage_invoice["total"]) == ("FINALIZED", D(300))
    assert ledger(balances(client, customer_id)[commit]) == [
        ("POSTPAID_COMMIT_INITIAL_BALANCE", D(200)),
        ("POSTPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-200)),
    ]


def test_trueup_alerts_voids_and_removal_by_a_transition(app: InProcess) -> None:
    client = app.client
    _this_month, first, second = months(app)
    trueup_alert = create_alert(
        client, alert_type="invoice_total_reached", threshold=500, invoice_types_filter=["TRUEUP"]
    )
    scheduled_alert = create_alert(
        client, alert_type="invoice_total_reached", threshold=500, invoice_types_filter=["SCHEDULED"]
    )
    app.run(app.now)
    customer_id, _contract, commit, usage = committed(app, 800)
    app.run(app.now + 1)
    assert status(client, trueup_alert, customer_id)[0] == "in_alarm"  # the draft bills 800 as of now
    assert status(client, scheduled_alert, customer_id)[0] == "ok"
    use(client, customer_id, usage, 4)  # 400 of usage: the draft falls to 400, below the threshold
    app.run(app.now + 2)
    assert status(client, trueup_alert, customer_id)[0] == "ok"

    app.run(first + GRACE_US)
    (final,) = trueups(app, customer_id)
    assert (final["status"], final["total"]) == ("FINALIZED", D(400))
    client.v1.invoices.void(id=final["id"])
    app.run(first + 2 * GRACE_US)
    (voided,) = trueups(app, customer_id)
    assert (voided["id"], voided["status"]) == (final["id"], "VOID")  # and nothing billed again
    # Its draw from the commit is given back, as a voided usage invoice's is.
    assert ledger(balances(client, customer_id)[commit]) == [
        ("POSTPAID_COMMIT_INITIAL_BALANCE", D(800)),
        ("POSTPAID_COMMIT_AUTOMATED_INVOICE_DEDUCTION", D(-400)),
    ]

    # A contract taking over at its old one's true-up date with trueup REMOVE: no true-up is billed.
    _this_month, first, second = months(app)
    old_customer, old_contract, _commit, _usage = committed(app, 400, ending_before=from_us(second))
    client.v1.contracts.create(
        customer_id=old_customer,
        rate_card_id=rate_card(client),
        starting_at=from_us(first),
        transition={
            "from_contract_id": old_contract,
            "type": "SUPERSEDE",
            "future_invoice_behavior": {"trueup": "REMOVE"},
        },
    )
    app.run(app.now + 1)
    assert trueups(app, old_customer) == []
    app.run(first + 40 * GRACE_US)
    assert trueups(app, old_customer) == []


def test_a_customer_level_postpaid_commit_is_trued_up_on_its_invoice_contract(app: InProcess) -> None:
    client = app.client
    this_month, first, _second = months(app)
    customer_id, contract_id, usage, product = contracted(app, None)
    commit = client.v1.customers.commits.create(
        customer_id=customer_id,
        priority=1,
        invoice_contract_id=contract_id,
        **postpaid(product, 250.5, this_month, first),  # type: ignore[arg-type]
    ).data.id
    use(client, customer_id, usage, 1)  # 100 drawn: 150.5 left
    app.run(first + GRACE_US)
    (final,) = trueups(app, customer_id)
    assert (final["status"], final["total"], final["contract_id"]) == ("FINALIZED", D("150.5"), contract_id)
    assert [(line["commit_id"], line["total"]) for line in final["line_items"]] == [(commit, D("150.5"))]
