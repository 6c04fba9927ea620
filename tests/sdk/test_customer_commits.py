"""Customer-level commits and credits through the Metronome SDK: create and read back every field,
invoice contracts, list filters and pages, uniqueness keys, every validation rule (a 4xx naming
the field), fields meterline does not support yet, and the commit terms the billing engine reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from metronome import Metronome

from meterline.store import commits as commit_store
from meterline.store.db import Database
from tests.sdk.contract_helpers import (
    APR,
    FEB,
    JAN,
    JUN,
    MAR,
    MISSING_ID,
    USD_CENTS,
    access,
    error_of,
    invoice,
    new_card,
    new_fixed_product,
    new_unit,
    new_usage_product,
    post,
)
from tests.sdk.helpers import new_customer, uid
from tests.support.server import RunningServer

Body = dict[str, Any]


@pytest.fixture(scope="module")
def catalog(server: RunningServer) -> dict[str, str]:
    """A customer with a contract, and products, for the tests that only ever get refused."""
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    customer_id = new_customer(client)
    return {
        "customer_id": customer_id,
        "contract_id": new_contract(client, customer_id),
        "fixed": new_fixed_product(client),
        "usage": new_usage_product(client),
        "unit": new_unit(client),
    }


def new_contract(client: Metronome, customer_id: str, **fields: Any) -> str:
    fields.setdefault("starting_at", JAN)
    return client.v1.contracts.create(
        customer_id=customer_id, rate_card_id=new_card(client), **fields
    ).data.id


def new_commit(client: Metronome, customer_id: str, product_id: str, **fields: Any) -> str:
    fields.setdefault("type", "PREPAID")
    fields.setdefault("priority", 1)
    fields.setdefault("access_schedule", access(100, JAN, FEB))
    return client.v1.customers.commits.create(
        customer_id=customer_id, product_id=product_id, **fields
    ).data.id


def new_credit(client: Metronome, customer_id: str, product_id: str, **fields: Any) -> str:
    fields.setdefault("priority", 1)
    fields.setdefault("access_schedule", access(10, JAN, FEB))
    return client.v1.customers.credits.create(
        customer_id=customer_id, product_id=product_id, **fields
    ).data.id


def commit_ids(client: Metronome, customer_id: str, **params: Any) -> set[str]:
    return {c.id for c in client.v1.customers.commits.list(customer_id=customer_id, **params)}


def credit_ids(client: Metronome, customer_id: str, **params: Any) -> set[str]:
    return {c.id for c in client.v1.customers.credits.list(customer_id=customer_id, **params)}


# Create and read back


def test_commit_round_trips_every_field(client: Metronome) -> None:
    customer_id, fixed, usage = new_customer(client), new_fixed_product(client), new_usage_product(client)
    contract_id = new_contract(client, customer_id)
    key = f"commit-{uid()}"
    commit_id = new_commit(
        client,
        customer_id,
        fixed,
        type="PREPAID",
        priority=5,
        name="Enterprise pool",
        description="shared by every contract",
        access_schedule={
            "credit_type_id": USD_CENTS,
            "schedule_items": [
                {"amount": 1000, "starting_at": JAN, "ending_before": APR},
                {"amount": 0.25, "starting_at": APR, "ending_before": JUN},
            ],
        },
        invoice_schedule={
            "schedule_items": [{"unit_price": 2.5, "quantity": 300, "timestamp": JAN}],
            "do_not_invoice": True,
        },
        invoice_contract_id=contract_id,
        applicable_product_ids=[usage],
        custom_fields={"po": "42"},
        rate_type="LIST_RATE",
        uniqueness_key=key,
    )

    [got] = client.v1.customers.commits.list(customer_id=customer_id, commit_id=commit_id)
    assert got.id == commit_id
    assert got.type == "PREPAID"
    assert got.product.id == fixed and got.product.name.startswith("commit ")
    assert (got.name, got.description, got.priority) == ("Enterprise pool", "shared by every contract", 5)
    assert got.applicable_product_ids == [usage]
    assert got.applicable_product_tags is None and got.specifiers is None
    assert got.custom_fields == {"po": "42"}
    assert got.uniqueness_key == key
    assert got.rate_type == "LIST_RATE"
    assert got.contract is None  # customer-level
    assert got.archived_at is None
    assert got.created_by == "api"
    assert got.access_schedule is not None
    assert got.access_schedule.credit_type is not None
    assert got.access_schedule.credit_type.to_dict() == {"id": USD_CENTS, "name": "USD (cents)"}
    items = got.access_schedule.schedule_items
    assert [(i.amount, i.starting_at, i.ending_before) for i in items] == [(1000, JAN, APR), (0.25, APR, JUN)]
    assert all(i.id for i in items) and items[0].id != items[1].id
    assert got.invoice_schedule is not None
    assert got.invoice_schedule.do_not_invoice is True
    assert got.invoice_schedule.credit_type is not None and got.invoice_schedule.credit_type.id == USD_CENTS
    [billed] = got.invoice_schedule.schedule_items or []
    assert (billed.unit_price, billed.quantity, billed.amount, billed.timestamp) == (2.5, 300, 750, JAN)
    assert got.invoice_contract is not None and got.invoice_contract.id == contract_id


def test_credit_round_trips_every_field(client: Metronome) -> None:
    customer_id, fixed, usage, unit = (
        new_customer(client),
        new_fixed_product(client),
        new_usage_product(client),
        new_unit(client),
    )
    key = f"credit-{uid()}"
    credit_id = new_credit(
        client,
        customer_id,
        fixed,
        priority=0.5,
        name="Goodwill",
        description="outage",
        access_schedule=access(25, FEB, MAR, credit_type_id=unit),
        specifiers=[
            {"product_id": usage, "pricing_group_values": {"region": "eu"}},
            {"product_tags": ["gpu"], "presentation_group_values": {"team": "ml"}},
        ],
        custom_fields={"ticket": "T-1"},
        uniqueness_key=key,
    )
    [got] = client.v1.customers.credits.list(customer_id=customer_id, credit_id=credit_id)
    assert (got.id, got.type, got.priority, got.name, got.description) == (
        credit_id,
        "CREDIT",
        0.5,
        "Goodwill",
        "outage",
    )
    assert got.product.id == fixed
    assert got.access_schedule is not None and got.access_schedule.credit_type is not None
    assert got.access_schedule.credit_type.id == unit
    assert [(i.amount, i.starting_at, i.ending_before) for i in got.access_schedule.schedule_items] == [
        (25, FEB, MAR)
    ]
    assert got.specifiers is not None
    assert [s.to_dict() for s in got.specifiers] == [
        {"product_id": usage, "pricing_group_values": {"region": "eu"}},
        {"product_tags": ["gpu"], "presentation_group_values": {"team": "ml"}},
    ]
    assert got.custom_fields == {"ticket": "T-1"}
    assert got.uniqueness_key == key
    assert got.contract is None and got.created_by == "api"
    assert "invoice_schedule" not in got.to_dict()


def test_invoice_contract_is_required_only_for_commits_that_bill(client: Metronome) -> None:
    customer_id, fixed = new_customer(client), new_fixed_product(client)
    other_contract = new_contract(client, new_customer(client))
    archived_contract = new_contract(client, customer_id)
    client.v1.contracts.archive(customer_id=customer_id, contract_id=archived_contract, void_invoices=False)

    complimentary = new_commit(client, customer_id, fixed)  # PREPAID without invoice schedule: free
    not_invoiced = new_commit(
        client, customer_id, fixed, invoice_schedule=invoice(100, JAN, do_not_invoice=True)
    )
    assert commit_ids(client, customer_id) == {complimentary, not_invoiced}

    postpaid: Body = {
        "type": "POSTPAID",
        "access_schedule": access(100, JAN, FEB),
        "invoice_schedule": invoice(100, FEB, do_not_invoice=True),
    }
    message = error_of(
        lambda: new_commit(client, customer_id, fixed, invoice_contract_id=other_contract, **postpaid), 400
    )
    assert message == f"invoice_contract_id: the customer has no contract with id {other_contract}"
    message = error_of(
        lambda: new_commit(client, customer_id, fixed, invoice_contract_id=archived_contract, **postpaid), 400
    )
    assert message == f"invoice_contract_id: contract {archived_contract} is archived"

    contract_id = new_contract(client, customer_id)
    trueup = new_commit(client, customer_id, fixed, invoice_contract_id=contract_id, **postpaid)
    [got] = client.v1.customers.commits.list(customer_id=customer_id, commit_id=trueup)
    assert got.type == "POSTPAID"
    assert got.invoice_contract is not None and got.invoice_contract.id == contract_id


# List filters and pages


def test_list_filters(client: Metronome) -> None:
    customer_id, fixed = new_customer(client), new_fixed_product(client)
    in_jan = new_commit(client, customer_id, fixed, access_schedule=access(1, JAN, FEB))
    in_mar = new_commit(client, customer_id, fixed, access_schedule=access(1, MAR, APR))
    credit = new_credit(client, customer_id, fixed, access_schedule=access(1, JAN, JUN))
    contract_id = new_contract(
        client,
        customer_id,
        commits=[{"type": "PREPAID", "product_id": fixed, "access_schedule": access(1, FEB, JUN)}],
        credits=[{"product_id": fixed, "access_schedule": access(1, FEB, JUN)}],
    )
    archived_id = new_contract(
        client,
        customer_id,
        commits=[{"type": "PREPAID", "product_id": fixed, "access_schedule": access(1, JAN, JUN)}],
    )
    client.v1.contracts.archive(customer_id=customer_id, contract_id=archived_id, void_invoices=False)
    contract = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current
    [on_contract] = contract.commits
    [contract_credit] = contract.credits or []
    [on_archived] = client.v1.contracts.retrieve(
        customer_id=customer_id, contract_id=archived_id
    ).data.current.commits

    assert commit_ids(client, customer_id) == {in_jan, in_mar}
    assert commit_ids(client, customer_id, include_contract_commits=True) == {in_jan, in_mar, on_contract.id}
    assert commit_ids(client, customer_id, include_contract_commits=True, include_archived=True) == {
        in_jan,
        in_mar,
        on_contract.id,
        on_archived.id,
    }
    assert commit_ids(client, customer_id, covering_date=JAN + timedelta(days=3)) == {in_jan}
    assert commit_ids(client, customer_id, covering_date=FEB) == set()  # ending_before is exclusive
    assert commit_ids(client, customer_id, starting_at=FEB) == {in_mar}
    assert commit_ids(client, customer_id, effective_before=FEB) == {in_jan}
    assert commit_ids(client, customer_id, effective_before=JAN) == set()
    assert commit_ids(client, customer_id, include_contract_commits=True, covering_date=MAR) == {
        in_mar,
        on_contract.id,
    }
    assert commit_ids(client, customer_id, commit_id=in_mar) == {in_mar}
    assert commit_ids(client, customer_id, commit_id=on_contract.id) == set()  # contract-level not included
    assert commit_ids(client, customer_id, access_type="SPEND") == {in_jan, in_mar}
    assert commit_ids(client, customer_id, access_type="QUANTITY") == set()

    assert credit_ids(client, customer_id) == {credit}
    assert credit_ids(client, customer_id, include_contract_credits=True) == {credit, contract_credit.id}
    assert credit_ids(client, customer_id, credit_id=in_jan) == set()  # a commit is not a credit

    [listed] = client.v1.customers.commits.list(
        customer_id=customer_id, include_contract_commits=True, commit_id=on_contract.id
    )
    assert listed.contract is not None and listed.contract.id == contract_id
    assert listed.to_dict() == on_contract.to_dict()
    # Balances and ledgers are another suite's subject: here only that asking for them works.
    with_balances = commit_ids(client, customer_id, include_balance=True, include_ledgers=True)
    assert with_balances == {in_jan, in_mar}


def test_list_pages_with_next_page_in_the_body(client: Metronome) -> None:
    customer_id, fixed = new_customer(client), new_fixed_product(client)
    created = sorted(new_commit(client, customer_id, fixed) for _ in range(5))

    first = client.v1.customers.commits.list(customer_id=customer_id, limit=2)
    assert [c.id for c in first.data] == created[:2]
    assert first.next_page
    second = client.v1.customers.commits.list(customer_id=customer_id, limit=2, next_page=first.next_page)
    assert [c.id for c in second.data] == created[2:4]
    assert [c.id for c in client.v1.customers.commits.list(customer_id=customer_id, limit=2)] == created
    last = client.v1.customers.commits.list(customer_id=customer_id, limit=5)
    assert len(last.data) == 5 and last.next_page is None

    for bad in ({"limit": 0}, {"limit": 101}):
        message = error_of(
            lambda bad=bad: client.v1.customers.commits.list(customer_id=customer_id, **bad), 400
        )
        assert message.startswith("limit:")
    message = error_of(
        lambda: client.v1.customers.credits.list(customer_id=customer_id, next_page="bogus"), 400
    )
    assert message == "next_page: invalid cursor"
    message = error_of(lambda: client.v1.customers.commits.list(customer_id=MISSING_ID), 404)
    assert message.startswith("customer_id: no customer")


def test_uniqueness_key_is_shared_by_commits_and_credits(client: Metronome) -> None:
    customer_id, fixed = new_customer(client), new_fixed_product(client)
    key = f"key-{uid()}"
    new_commit(client, customer_id, fixed, uniqueness_key=key)
    used = "This uniqueness key has already been used."
    assert error_of(lambda: new_commit(client, customer_id, fixed, uniqueness_key=key), 409) == used
    assert error_of(lambda: new_credit(client, new_customer(client), fixed, uniqueness_key=key), 409) == used
    message = error_of(
        lambda: new_contract(
            client,
            customer_id,
            credits=[{"product_id": fixed, "access_schedule": access(1, JAN, FEB), "uniqueness_key": key}],
        ),
        409,
    )
    assert message == f"credits.0.uniqueness_key: {used}"


# Validation: each rule refused with a 4xx naming the field


def valid_commit(catalog: dict[str, str]) -> Body:
    return {
        "customer_id": catalog["customer_id"],
        "product_id": catalog["fixed"],
        "type": "PREPAID",
        "priority": 1,
        "access_schedule": {
            "schedule_items": [
                {"amount": 10, "starting_at": JAN, "ending_before": FEB},
                {"amount": 10, "starting_at": FEB, "ending_before": MAR},
            ]
        },
        "invoice_schedule": invoice(20, JAN, do_not_invoice=True),
        "invoice_contract_id": catalog["contract_id"],
    }


def as_postpaid(body: Body) -> Body:
    body.update(
        type="POSTPAID",
        access_schedule=access(10, JAN, FEB),
        invoice_schedule=invoice(10, FEB, do_not_invoice=True),
    )
    return body


Mutation = Callable[[Body, dict[str, str]], Any]
COMMIT_RULES: list[tuple[str, Mutation, int, str]] = [
    ("priority missing", lambda b, c: b.pop("priority"), 400, "priority: is required"),
    (
        "customer unknown",
        lambda b, c: b.update(customer_id=MISSING_ID),
        404,
        "customer_id: no customer with id",
    ),
    ("product unknown", lambda b, c: b.update(product_id=MISSING_ID), 400, "product_id: no product with id"),
    (
        "product not FIXED",
        lambda b, c: b.update(product_id=c["usage"]),
        400,
        "product_id: must be a FIXED product",
    ),
    ("access schedule missing", lambda b, c: b.pop("access_schedule"), 400, "access_schedule: is required"),
    (
        "access item ends before it starts",
        lambda b, c: b["access_schedule"]["schedule_items"][1].update(ending_before=JAN),
        400,
        "access_schedule.schedule_items.1.ending_before: must be after starting_at",
    ),
    (
        "access amount negative",
        lambda b, c: b["access_schedule"]["schedule_items"][0].update(amount=-1),
        400,
        "access_schedule.schedule_items.0.amount:",
    ),
    (
        "access credit type archived or unknown",
        lambda b, c: b["access_schedule"].update(credit_type_id=MISSING_ID),
        400,
        "access_schedule.credit_type_id: no pricing unit with id",
    ),
    (
        "postpaid amounts differ",
        lambda b, c: (as_postpaid(b), b.update(invoice_schedule=invoice(11, FEB, do_not_invoice=True))),
        400,
        "invoice_schedule.schedule_items.0.amount: must equal the access schedule amount 10",
    ),
    (
        "postpaid invoice in another credit type",
        lambda b, c: (as_postpaid(b), b["access_schedule"].update(credit_type_id=c["unit"])),
        400,
        "invoice_schedule.credit_type_id: a POSTPAID commit is invoiced in its access schedule's credit type",
    ),
    (
        "postpaid true-up dated before its access ends",
        lambda b, c: (as_postpaid(b), b.update(invoice_schedule=invoice(10, JAN))),
        400,
        "invoice_schedule.schedule_items.0.timestamp: a POSTPAID commit's true-up is invoiced at or after",
    ),
    (
        "postpaid without invoice schedule",
        lambda b, c: (as_postpaid(b), b.pop("invoice_schedule")),
        400,
        "invoice_schedule: is required for POSTPAID commits",
    ),
    (
        "invoice timestamp not a time",
        lambda b, c: b["invoice_schedule"]["schedule_items"][0].update(timestamp="soon"),
        400,
        "invoice_schedule.schedule_items.0.timestamp: must be an RFC 3339 timestamp",
    ),
    ("unknown type", lambda b, c: b.update(type="CREDIT"), 400, "type:"),
    (
        "commit rate",
        lambda b, c: b.update(rate_type="COMMIT_RATE"),
        400,
        "rate_type: meterline does not support COMMIT_RATE yet",
    ),
    (
        "specifiers with applicable products",
        lambda b, c: b.update(applicable_product_ids=[c["usage"]], specifiers=[{"product_id": c["usage"]}]),
        400,
        "specifiers: cannot be used together with applicable_product_ids or applicable_product_tags",
    ),
    (
        "applicable product unknown",
        lambda b, c: b.update(applicable_product_ids=[MISSING_ID]),
        400,
        "applicable_product_ids.0: no product with id",
    ),
    (
        "applicable contracts",
        lambda b, c: b.update(applicable_contract_ids=[c["contract_id"]]),
        400,
        "applicable_contract_ids: meterline does not support this field yet",
    ),
    (
        "salesforce opportunity",
        lambda b, c: b.update(salesforce_opportunity_id="opp"),
        400,
        "salesforce_opportunity_id: meterline does not support this field yet",
    ),
    (
        "netsuite sales order",
        lambda b, c: b.update(netsuite_sales_order_id="so"),
        400,
        "netsuite_sales_order_id: meterline does not support this field yet",
    ),
    (
        "quantity access",
        lambda b, c: b["access_schedule"].update(access_type="QUANTITY"),
        400,
        "access_schedule.access_type: meterline does not support QUANTITY access yet",
    ),
    ("long name", lambda b, c: b.update(name="n" * 201), 400, "name:"),
]


@pytest.mark.parametrize(
    ("mutate", "status", "expected"), [r[1:] for r in COMMIT_RULES], ids=[r[0] for r in COMMIT_RULES]
)
def test_each_commit_rule_is_refused_naming_the_field(
    client: Metronome, catalog: dict[str, str], mutate: Mutation, status: int, expected: str
) -> None:
    body = valid_commit(catalog)
    mutate(body, catalog)
    message = error_of(lambda: post(client, "/v1/contracts/customerCommits/create", body), status)
    assert message.startswith(expected), message


def test_the_valid_bodies_of_the_rule_tests_are_accepted(client: Metronome, catalog: dict[str, str]) -> None:
    assert client.v1.customers.commits.create(**valid_commit(catalog)).data.id
    postpaid = valid_commit(catalog)
    as_postpaid(postpaid)
    assert client.v1.customers.commits.create(**postpaid).data.id
    with_empty_contracts = {**valid_commit(catalog), "applicable_contract_ids": []}  # every contract
    assert client.v1.customers.commits.create(**with_empty_contracts).data.id


def test_credit_rules(client: Metronome, catalog: dict[str, str]) -> None:
    create = client.v1.customers.credits.create
    base: Body = {
        "customer_id": catalog["customer_id"],
        "product_id": catalog["fixed"],
        "priority": 1,
        "access_schedule": access(5, JAN, FEB),
    }
    assert create(**base).data.id
    message = error_of(lambda: create(**{**base, "access_schedule": {"schedule_items": []}}), 400)
    assert message == "access_schedule.schedule_items: must hold at least one schedule item"
    message = error_of(lambda: create(**base, extra_body={"invoice_schedule": invoice(5, JAN)}), 400)
    assert message == "invoice_schedule: unknown field"
    message = error_of(lambda: create(**base, extra_body={"type": "PREPAID"}), 400)
    assert message == "type: unknown field"
    message = error_of(lambda: create(**{**base, "specifiers": [{}]}), 400)
    assert message.startswith("specifiers.0: give at least one of")
    message = error_of(
        lambda: create(**{**base, "access_schedule": access(5, JAN + timedelta(minutes=5), FEB)}), 400
    )
    assert message.startswith("access_schedule.schedule_items.0.starting_at: must be on an hour boundary")


def test_archived_customers_take_no_commits(client: Metronome) -> None:
    customer_id, fixed = new_customer(client), new_fixed_product(client)
    client.v1.customers.archive(id=customer_id)
    message = error_of(lambda: new_commit(client, customer_id, fixed), 400)
    assert message == f"customer_id: customer {customer_id} is archived"
    message = error_of(lambda: new_credit(client, customer_id, fixed), 400)
    assert message == f"customer_id: customer {customer_id} is archived"


# What the billing engine reads


def test_engine_reads_customer_and_contract_commits(client: Metronome, db: Database) -> None:
    customer_id, fixed = new_customer(client), new_fixed_product(client)
    contract_id = new_contract(client, customer_id)
    paid = new_commit(  # "paid" once meterline invoices commits
        client,
        customer_id,
        fixed,
        priority=3,
        invoice_schedule=invoice(90, JAN, do_not_invoice=True),
        invoice_contract_id=contract_id,
    )
    free = new_commit(client, customer_id, fixed, applicable_product_tags=["gpu"])
    credit = new_credit(client, customer_id, fixed)
    archived_id = new_contract(
        client,
        customer_id,
        commits=[{"type": "PREPAID", "product_id": fixed, "access_schedule": access(1, JAN, FEB)}],
    )
    client.v1.contracts.archive(customer_id=customer_id, contract_id=archived_id, void_invoices=False)

    with db.read() as conn:
        found = {c.id: c for c in commit_store.commits_for_customer(conn, customer_id)}
    assert set(found) == {paid, free, credit}
    assert all(c.contract_id is None and c.applies_to_contract(contract_id) for c in found.values())
    assert (found[paid].kind, found[paid].is_paid, found[paid].priority) == ("PREPAID", False, Decimal(3))
    assert (found[free].is_paid, found[free].applicable_product_tags) == (False, frozenset({"gpu"}))
    assert (found[credit].kind, found[credit].is_paid) == ("CREDIT", False)
    assert found[paid].credit_type_id == USD_CENTS
    [segment] = found[paid].segments
    assert segment.amount == 100
