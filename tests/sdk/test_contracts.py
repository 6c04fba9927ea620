"""Contracts through the Metronome SDK: create with commits, credits and overrides and read back
every field, rate card aliases, usage statement schedules, uniqueness keys, archive, list filters
and pages, every validation rule (a 4xx naming the field), fields meterline does not support yet,
and the contract terms the billing engine reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from metronome import Metronome

from meterline.domain.billing_periods import AnchorDay, Frequency
from meterline.domain.pricing import PriceSpec, Tier
from meterline.domain.timeutil import to_us
from meterline.store import commits as commit_store
from meterline.store import contracts as contract_store
from meterline.store.db import Database
from tests.sdk.contract_helpers import (
    APR,
    FEB,
    JAN,
    JUN,
    MAR,
    MAY,
    MISSING_ID,
    USD_CENTS,
    access,
    error_of,
    invoice,
    new_card,
    new_fixed_product,
    new_unit,
    new_usage_product,
)
from tests.sdk.helpers import new_customer, uid
from tests.support.server import RunningServer

Body = dict[str, Any]


@pytest.fixture(scope="module")
def catalog(server: RunningServer) -> dict[str, str]:
    """One customer, products and rate card for the tests that only ever get refused."""
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    return {
        "customer_id": new_customer(client),
        "fixed": new_fixed_product(client),
        "usage": new_usage_product(client),
        "card": new_card(client),
        "unit": new_unit(client),
    }


def create(client: Metronome, **fields: Any) -> str:
    return client.v1.contracts.create(**fields).data.id


def get(client: Metronome, customer_id: str, contract_id: str, **params: Any) -> Any:
    return client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id, **params).data


def contract_ids(client: Metronome, customer_id: str, **params: Any) -> list[str]:
    return [c.id for c in client.v1.contracts.list(customer_id=customer_id, **params)]


# Create and read back


def test_contract_round_trips_every_field(client: Metronome) -> None:
    customer_id, fixed = new_customer(client), new_fixed_product(client)
    usage = new_usage_product(client, tags=["compute"])
    card, unit = new_card(client), new_unit(client)
    client.v1.contracts.rate_cards.update(
        rate_card_id=card,
        add_credit_type_conversions=[{"custom_credit_type_id": unit, "fiat_per_custom_credit": 2}],
    )
    key = f"contract-{uid()}"
    contract_id = create(
        client,
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=JAN,
        ending_before=JUN,
        name="Acme 2024",
        custom_fields={"deal": "big"},
        uniqueness_key=key,
        usage_statement_schedule={"frequency": "QUARTERLY", "day": "CONTRACT_START"},
        multiplier_override_prioritization="EXPLICIT",
        commits=[
            {
                "type": "PREPAID",
                "product_id": fixed,
                "name": "prepaid",
                "description": "paid up front",
                "priority": 1,
                "access_schedule": {
                    "credit_type_id": USD_CENTS,
                    "schedule_items": [
                        {"amount": 1000, "starting_at": JAN, "ending_before": MAR},
                        {"amount": 250.5, "starting_at": MAR, "ending_before": JUN},
                    ],
                },
                "invoice_schedule": {
                    "schedule_items": [{"unit_price": 2.5, "quantity": 4, "timestamp": JAN}],
                    "do_not_invoice": True,
                },
                "applicable_product_tags": ["compute"],
                "custom_fields": {"po": "17"},
                "rate_type": "LIST_RATE",
            },
            {
                "type": "POSTPAID",
                "product_id": fixed,
                "access_schedule": access(500, JAN, JUN),
                "invoice_schedule": invoice(500, JUN, do_not_invoice=True),
                "amount": 500,
            },
        ],
        credits=[
            {
                "product_id": fixed,
                "access_schedule": access(10, JAN, FEB, credit_type_id=unit),
                "specifiers": [{"product_id": usage, "pricing_group_values": {"region": "eu"}}],
                "priority": 2,
            }
        ],
        overrides=[
            {"starting_at": JAN, "type": "MULTIPLIER", "multiplier": 0.9, "product_id": usage, "priority": 1},
            {
                "starting_at": FEB,
                "ending_before": MAR,
                "type": "OVERWRITE",
                "applicable_product_tags": ["compute"],
                "overwrite_rate": {
                    "rate_type": "TIERED",
                    "tiers": [{"price": 1, "size": 10}, {"price": 0.5}],
                },
                "entitled": True,
            },
            {
                "starting_at": MAR,
                "type": "OVERWRITE",
                "override_specifiers": [{"product_id": usage, "pricing_group_values": {"region": "us"}}],
                "overwrite_rate": {"rate_type": "FLAT", "price": 3, "credit_type_id": unit},
            },
        ],
    )

    got = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    assert got.id == contract_id
    assert got.customer_id == customer_id
    assert got.custom_fields == {"deal": "big"}
    assert got.uniqueness_key == key
    assert got.archived_at is None
    assert got.amendments == []
    assert got.initial.to_dict() == got.current.to_dict()
    terms = got.current
    assert terms.name == "Acme 2024"
    assert terms.rate_card_id == card
    assert (terms.starting_at, terms.ending_before) == (JAN, JUN)
    assert terms.usage_statement_schedule.to_dict() == {"billing_anchor_date": JAN, "frequency": "QUARTERLY"}
    assert terms.created_by == "api"
    assert terms.scheduled_charges == [] and terms.transitions == []
    assert terms.to_dict()["multiplier_override_prioritization"] == "EXPLICIT"

    prepaid, postpaid = terms.commits
    assert prepaid.type == "PREPAID" and postpaid.type == "POSTPAID"
    assert prepaid.product.id == fixed and prepaid.product.name.startswith("commit ")
    assert (prepaid.name, prepaid.description, prepaid.priority) == ("prepaid", "paid up front", 1)
    assert prepaid.contract is not None and prepaid.contract.id == contract_id
    assert prepaid.applicable_product_tags == ["compute"]
    assert prepaid.custom_fields == {"po": "17"}
    assert prepaid.rate_type == "LIST_RATE"
    assert prepaid.created_by == "api"
    assert prepaid.access_schedule is not None
    assert prepaid.access_schedule.credit_type is not None
    assert prepaid.access_schedule.credit_type.to_dict() == {"id": USD_CENTS, "name": "USD (cents)"}
    items = prepaid.access_schedule.schedule_items
    assert [(i.amount, i.starting_at, i.ending_before) for i in items] == [
        (1000, JAN, MAR),
        (250.5, MAR, JUN),
    ]
    assert len({i.id for i in items}) == 2
    assert prepaid.invoice_schedule is not None
    assert prepaid.invoice_schedule.do_not_invoice is True
    [billed] = prepaid.invoice_schedule.schedule_items or []
    assert (billed.unit_price, billed.quantity, billed.amount, billed.timestamp) == (2.5, 4, 10, JAN)
    assert billed.id
    assert prepaid.invoice_contract is not None and prepaid.invoice_contract.id == contract_id
    assert postpaid.access_schedule is not None
    assert [i.amount for i in postpaid.access_schedule.schedule_items] == [500]
    assert postpaid.invoice_schedule is not None
    [trueup] = postpaid.invoice_schedule.schedule_items or []
    assert (trueup.amount, trueup.unit_price, trueup.quantity, trueup.timestamp) == (500, 500, 1, JUN)

    [credit] = terms.credits or []
    assert credit.type == "CREDIT"
    assert credit.priority == 2
    assert credit.access_schedule is not None and credit.access_schedule.credit_type is not None
    assert credit.access_schedule.credit_type.id == unit
    assert credit.specifiers is not None
    assert [s.to_dict() for s in credit.specifiers] == [
        {"product_id": usage, "pricing_group_values": {"region": "eu"}}
    ]

    multiplier, tiered, flat = terms.overrides
    assert (multiplier.type, multiplier.multiplier, multiplier.priority) == ("MULTIPLIER", 0.9, 1)
    assert multiplier.product is not None and multiplier.product.id == usage
    assert multiplier.starting_at == JAN and multiplier.ending_before is None
    assert (tiered.type, tiered.starting_at, tiered.ending_before) == ("OVERWRITE", FEB, MAR)
    assert tiered.applicable_product_tags == ["compute"]
    assert tiered.entitled is True
    assert tiered.overwrite_rate is not None
    assert tiered.overwrite_rate.to_dict() == {
        "rate_type": "TIERED",
        "tiers": [{"price": 1, "size": 10}, {"price": 0.5}],
    }
    assert flat.override_specifiers is not None
    assert [s.to_dict() for s in flat.override_specifiers] == [
        {"product_id": usage, "pricing_group_values": {"region": "us"}}
    ]
    assert flat.overwrite_rate is not None and flat.overwrite_rate.price == 3
    assert flat.overwrite_rate.credit_type is not None and flat.overwrite_rate.credit_type.id == unit
    assert len({o.id for o in terms.overrides}) == 3

    [listed] = client.v1.contracts.list(customer_id=customer_id)
    assert listed.to_dict() == got.to_dict()
    # Balances and ledgers are another suite's subject: here only that asking for them works.
    with_balances = get(client, customer_id, contract_id, include_balance=True, include_ledgers=True)
    assert [c.id for c in with_balances.current.commits] == [prepaid.id, postpaid.id]


def test_defaults_of_a_minimal_contract(client: Metronome) -> None:
    customer_id, card = new_customer(client), new_card(client)
    contract_id = create(
        client, customer_id=customer_id, rate_card_id=card, starting_at=FEB + timedelta(days=9)
    )
    got = get(client, customer_id, contract_id)
    assert got.uniqueness_key is None
    assert got.custom_fields == {}
    terms = got.current
    assert terms.ending_before is None and terms.name is None
    assert terms.commits == [] and terms.credits == [] and terms.overrides == []
    # FIRST_OF_MONTH by default: periods are anchored on the first of the starting month.
    assert terms.usage_statement_schedule.to_dict() == {"billing_anchor_date": FEB, "frequency": "MONTHLY"}
    assert terms.to_dict()["multiplier_override_prioritization"] == "LOWEST_MULTIPLIER"


def test_custom_date_anchor_and_weekly_schedules(client: Metronome) -> None:
    customer_id, card = new_customer(client), new_card(client)
    custom = create(
        client,
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=FEB,
        usage_statement_schedule={"frequency": "ANNUAL", "day": "CUSTOM_DATE", "billing_anchor_date": JAN},
    )
    weekly = create(
        client,
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=MAR + timedelta(days=2),
        usage_statement_schedule={"frequency": "WEEKLY"},
    )
    assert get(client, customer_id, custom).current.usage_statement_schedule.to_dict() == {
        "billing_anchor_date": JAN,
        "frequency": "ANNUAL",
    }
    assert get(client, customer_id, weekly).current.usage_statement_schedule.to_dict() == {
        "billing_anchor_date": MAR + timedelta(days=2),
        "frequency": "WEEKLY",
    }


def test_rate_card_alias_resolves_at_the_contract_start(client: Metronome) -> None:
    customer_id, alias = new_customer(client), f"standard-{uid()}"
    early = new_card(client, aliases=[{"name": alias, "ending_before": MAR}])
    late = new_card(client, aliases=[{"name": alias, "starting_at": MAR}])
    in_feb = create(client, customer_id=customer_id, rate_card_alias=alias, starting_at=FEB)
    in_mar = create(client, customer_id=customer_id, rate_card_alias=alias, starting_at=MAR)
    assert get(client, customer_id, in_feb).current.rate_card_id == early
    assert get(client, customer_id, in_mar).current.rate_card_id == late

    message = error_of(
        lambda: create(client, customer_id=customer_id, rate_card_alias=f"nope-{uid()}", starting_at=FEB), 400
    )
    assert message.startswith("rate_card_alias: no rate card holds alias")
    message = error_of(
        lambda: create(
            client, customer_id=customer_id, rate_card_id=early, rate_card_alias=alias, starting_at=FEB
        ),
        400,
    )
    assert message == "rate_card_alias: give either rate_card_id or rate_card_alias, not both"


def test_uniqueness_key_is_used_once_even_after_archive(client: Metronome) -> None:
    customer_id, other_customer, card = new_customer(client), new_customer(client), new_card(client)
    key = f"key-{uid()}"
    first = create(client, customer_id=customer_id, rate_card_id=card, starting_at=JAN, uniqueness_key=key)

    def again() -> str:
        return create(
            client, customer_id=other_customer, rate_card_id=card, starting_at=JAN, uniqueness_key=key
        )

    assert error_of(again, 409) == "This uniqueness key has already been used."
    client.v1.contracts.archive(customer_id=customer_id, contract_id=first, void_invoices=False)
    assert error_of(again, 409) == "This uniqueness key has already been used."


def test_get_is_scoped_to_the_customer(client: Metronome) -> None:
    customer_id, other, card = new_customer(client), new_customer(client), new_card(client)
    contract_id = create(client, customer_id=customer_id, rate_card_id=card, starting_at=JAN)
    message = error_of(lambda: get(client, other, contract_id), 404)
    assert message.startswith("contract_id:")
    assert error_of(lambda: get(client, customer_id, MISSING_ID), 404).startswith("contract_id:")
    message = error_of(lambda: client.v1.contracts.list(customer_id=MISSING_ID), 404)
    assert message.startswith("customer_id: no customer")


# Archive and list


def test_archive_and_list_filters(client: Metronome) -> None:
    customer_id, card = new_customer(client), new_card(client)
    jan_feb = create(client, customer_id=customer_id, rate_card_id=card, starting_at=JAN, ending_before=FEB)
    from_feb = create(client, customer_id=customer_id, rate_card_id=card, starting_at=FEB)
    apr_may = create(client, customer_id=customer_id, rate_card_id=card, starting_at=APR, ending_before=MAY)
    archived = create(client, customer_id=customer_id, rate_card_id=card, starting_at=MAR)

    # void_invoices false: the evaluator may already have finalized the contract's past periods.
    archive = client.v1.contracts.archive(customer_id=customer_id, contract_id=archived, void_invoices=False)
    assert archive.data.id == archived
    client.v1.contracts.archive(
        customer_id=customer_id, contract_id=archived, void_invoices=True
    )  # harmless: already archived
    got = get(client, customer_id, archived)
    assert got.archived_at is not None

    assert contract_ids(client, customer_id) == [jan_feb, from_feb, apr_may]
    assert contract_ids(client, customer_id, include_archived=True) == [jan_feb, from_feb, archived, apr_may]
    assert contract_ids(client, customer_id, covering_date=JAN) == [jan_feb]
    assert contract_ids(client, customer_id, covering_date=FEB) == [from_feb]  # ending_before is exclusive
    assert contract_ids(client, customer_id, covering_date=APR) == [from_feb, apr_may]
    assert contract_ids(client, customer_id, covering_date=MAR, include_archived=True) == [from_feb, archived]
    assert contract_ids(client, customer_id, starting_at=FEB) == [from_feb, apr_may]
    assert contract_ids(client, customer_id, starting_at=FEB + timedelta(hours=1)) == [apr_may]

    message = error_of(
        lambda: client.v1.contracts.list(customer_id=customer_id, starting_at=JAN, covering_date=JAN), 400
    )
    assert message == "starting_at: cannot be given together with covering_date"
    other = new_customer(client)
    message = error_of(
        lambda: client.v1.contracts.archive(customer_id=other, contract_id=jan_feb, void_invoices=False), 404
    )
    assert message.startswith("contract_id:")


def test_list_pages_with_a_body_cursor(client: Metronome) -> None:
    customer_id, card = new_customer(client), new_card(client)
    starts = [JAN, FEB, MAR, APR, MAY]
    created = [
        create(client, customer_id=customer_id, rate_card_id=card, starting_at=s) for s in reversed(starts)
    ]
    in_start_order = list(reversed(created))

    first = client.v1.contracts.list(customer_id=customer_id, limit=2)
    assert [c.id for c in first.data] == in_start_order[:2]
    assert first.cursor
    second = client.v1.contracts.list(customer_id=customer_id, limit=2, cursor=first.cursor)
    assert [c.id for c in second.data] == in_start_order[2:4]
    assert contract_ids(client, customer_id, limit=2) == in_start_order  # the SDK follows the cursor

    message = error_of(lambda: client.v1.contracts.list(customer_id=customer_id, limit=21), 400)
    assert message.startswith("limit:")
    message = error_of(lambda: client.v1.contracts.list(customer_id=customer_id, cursor="bogus"), 400)
    assert message == "cursor: invalid cursor"


# Validation: each rule refused with a 4xx naming the field


def valid_body(catalog: dict[str, str]) -> Body:
    return {
        "customer_id": catalog["customer_id"],
        "rate_card_id": catalog["card"],
        "starting_at": JAN,
        "commits": [
            {
                "type": "PREPAID",
                "product_id": catalog["fixed"],
                "access_schedule": {
                    "schedule_items": [
                        {"amount": 100, "starting_at": JAN, "ending_before": FEB},
                        {"amount": 100, "starting_at": FEB, "ending_before": MAR},
                    ]
                },
                "invoice_schedule": invoice(200, JAN, do_not_invoice=True),
            }
        ],
        "credits": [{"product_id": catalog["fixed"], "access_schedule": access(5, JAN, FEB)}],
        "overrides": [
            {"starting_at": JAN, "type": "MULTIPLIER", "multiplier": 0.5, "product_id": catalog["usage"]}
        ],
    }


def commit0(body: Body) -> Body:
    commit: Body = body["commits"][0]
    return commit


def override0(body: Body) -> Body:
    override: Body = body["overrides"][0]
    return override


def postpaid(body: Body) -> Body:
    commit0(body)["type"] = "POSTPAID"
    commit0(body)["access_schedule"] = access(100, JAN, FEB)
    commit0(body)["invoice_schedule"] = invoice(100, FEB, do_not_invoice=True)
    return body


Mutation = Callable[[Body, dict[str, str]], Any]
RULES: list[tuple[str, Mutation, int, str]] = [
    (
        "contract ends before it starts",
        lambda b, c: b.update(ending_before=JAN),
        400,
        "ending_before: must be after starting_at",
    ),
    (
        "contract start off the hour",
        lambda b, c: b.update(starting_at=JAN + timedelta(minutes=30)),
        400,
        "starting_at: must be on an hour boundary",
    ),
    (
        "unknown customer",
        lambda b, c: b.update(customer_id=MISSING_ID),
        404,
        "customer_id: no customer with id",
    ),
    (
        "unknown rate card",
        lambda b, c: b.update(rate_card_id=MISSING_ID),
        404,
        "rate_card_id: no rate card with id",
    ),
    ("no rate card", lambda b, c: b.pop("rate_card_id"), 400, "rate_card_id: is required"),
    (
        "schedule without frequency",
        lambda b, c: b.update(usage_statement_schedule={"day": "FIRST_OF_MONTH"}),
        400,
        "usage_statement_schedule.frequency: is required",
    ),
    (
        "custom date without anchor",
        lambda b, c: b.update(usage_statement_schedule={"frequency": "MONTHLY", "day": "CUSTOM_DATE"}),
        400,
        "usage_statement_schedule.billing_anchor_date: is required when day is CUSTOM_DATE",
    ),
    (
        "anchor without custom date",
        lambda b, c: b.update(usage_statement_schedule={"frequency": "MONTHLY", "billing_anchor_date": JAN}),
        400,
        "usage_statement_schedule.billing_anchor_date: is only allowed when day is CUSTOM_DATE",
    ),
    (
        "unknown prioritization",
        lambda b, c: b.update(multiplier_override_prioritization="HIGHEST"),
        400,
        "multiplier_override_prioritization:",
    ),
    ("long uniqueness key", lambda b, c: b.update(uniqueness_key="k" * 129), 400, "uniqueness_key:"),
    ("long name", lambda b, c: b.update(name="n" * 201), 400, "name:"),
    (
        "commit product unknown",
        lambda b, c: commit0(b).update(product_id=MISSING_ID),
        400,
        "commits.0.product_id: no product with id",
    ),
    (
        "commit product not FIXED",
        lambda b, c: commit0(b).update(product_id=c["usage"]),
        400,
        "commits.0.product_id: must be a FIXED product",
    ),
    (
        "commit without access schedule",
        lambda b, c: commit0(b).pop("access_schedule"),
        400,
        "commits.0.access_schedule: is required",
    ),
    (
        "commit with no access items",
        lambda b, c: commit0(b).update(access_schedule={"schedule_items": []}),
        400,
        "commits.0.access_schedule.schedule_items: must hold at least one schedule item",
    ),
    (
        "access amount zero",
        lambda b, c: commit0(b)["access_schedule"]["schedule_items"][0].update(amount=0),
        400,
        "commits.0.access_schedule.schedule_items.0.amount:",
    ),
    (
        "access item ends before it starts",
        lambda b, c: commit0(b)["access_schedule"]["schedule_items"][1].update(ending_before=FEB),
        400,
        "commits.0.access_schedule.schedule_items.1.ending_before: must be after starting_at",
    ),
    (
        "access item off the hour",
        lambda b, c: commit0(b)["access_schedule"]["schedule_items"][0].update(
            starting_at=JAN + timedelta(seconds=1)
        ),
        400,
        "commits.0.access_schedule.schedule_items.0.starting_at: must be on an hour boundary",
    ),
    (
        "access credit type unknown",
        lambda b, c: commit0(b)["access_schedule"].update(credit_type_id=MISSING_ID),
        400,
        "commits.0.access_schedule.credit_type_id: no pricing unit with id",
    ),
    (
        "quantity access",
        lambda b, c: commit0(b)["access_schedule"].update(access_type="QUANTITY"),
        400,
        "commits.0.access_schedule.access_type: meterline does not support QUANTITY access yet",
    ),
    (
        "postpaid true-up dated before its access ends",
        lambda b, c: (postpaid(b), commit0(b).update(invoice_schedule=invoice(100, JAN))),
        400,
        "commits.0.invoice_schedule.schedule_items.0.timestamp: a POSTPAID commit's true-up is invoiced",
    ),
    (
        "postpaid without invoice schedule",
        lambda b, c: (postpaid(b), commit0(b).pop("invoice_schedule")),
        400,
        "commits.0.invoice_schedule: is required for POSTPAID commits",
    ),
    (
        "postpaid with two access items",
        lambda b, c: (
            postpaid(b),
            commit0(b)["access_schedule"]["schedule_items"].append(
                {"amount": 1, "starting_at": FEB, "ending_before": MAR}
            ),
        ),
        400,
        "commits.0.access_schedule.schedule_items: a POSTPAID commit has exactly one access schedule item",
    ),
    (
        "postpaid with two invoice items",
        lambda b, c: (
            postpaid(b),
            commit0(b)["invoice_schedule"]["schedule_items"].append({"amount": 1, "timestamp": MAR}),
        ),
        400,
        "commits.0.invoice_schedule.schedule_items: a POSTPAID commit has exactly one invoice schedule item",
    ),
    (
        "postpaid amounts differ",
        lambda b, c: (postpaid(b), commit0(b).update(invoice_schedule=invoice(99, FEB))),
        400,
        "commits.0.invoice_schedule.schedule_items.0.amount: must equal the access schedule amount",
    ),
    (
        "invoice item with amount and unit price",
        lambda b, c: commit0(b).update(
            invoice_schedule={
                "schedule_items": [{"amount": 1, "unit_price": 1, "quantity": 1, "timestamp": JAN}]
            }
        ),
        400,
        "commits.0.invoice_schedule.schedule_items.0.amount: give either amount or unit_price with quantity",
    ),
    (
        "invoice item without amount",
        lambda b, c: commit0(b).update(
            invoice_schedule={"schedule_items": [{"unit_price": 1, "timestamp": JAN}]}
        ),
        400,
        "commits.0.invoice_schedule.schedule_items.0: give either amount or both unit_price and quantity",
    ),
    (
        "empty invoice schedule",
        lambda b, c: commit0(b).update(invoice_schedule={"schedule_items": []}),
        400,
        "commits.0.invoice_schedule.schedule_items: must hold at least one schedule item",
    ),
    (
        "invoice in a custom unit",
        lambda b, c: commit0(b)["invoice_schedule"].update(credit_type_id=c["unit"]),
        400,
        "commits.0.invoice_schedule.credit_type_id: invoices are in a fiat currency",
    ),
    (
        "invoice schedule both explicit and recurring",
        lambda b, c: commit0(b)["invoice_schedule"].update(
            recurring_schedule={
                "amount_distribution": "EACH",
                "frequency": "MONTHLY",
                "starting_at": JAN,
                "ending_before": MAR,
                "amount": 1,
            }
        ),
        400,
        "commits.0.invoice_schedule.recurring_schedule: give either schedule_items or recurring_schedule",
    ),
    (
        "recurring invoice schedule that ends before it starts",
        lambda b, c: commit0(b).update(
            invoice_schedule={
                "recurring_schedule": {
                    "amount_distribution": "DIVIDED",
                    "frequency": "MONTHLY",
                    "starting_at": MAR,
                    "ending_before": JAN,
                    "amount": 1,
                }
            }
        ),
        400,
        "commits.0.invoice_schedule.recurring_schedule.ending_before: must be after starting_at",
    ),
    (
        "scheduled charge of a usage product",
        lambda b, c: b.update(
            scheduled_charges=[
                {"product_id": c["usage"], "schedule": {"schedule_items": [{"timestamp": JAN, "amount": 1}]}}
            ]
        ),
        400,
        "scheduled_charges.0.product_id: must be a FIXED product",
    ),
    (
        "scheduled charge without a date",
        lambda b, c: b.update(scheduled_charges=[{"product_id": c["fixed"], "schedule": {}}]),
        400,
        "scheduled_charges.0.schedule.schedule_items: give at least one schedule item, or a recurring_schedule",
    ),
    (
        "scheduled charge that would not invoice",
        lambda b, c: b.update(
            scheduled_charges=[
                {
                    "product_id": c["fixed"],
                    "schedule": {"do_not_invoice": True, "schedule_items": [{"timestamp": JAN, "amount": 1}]},
                }
            ]
        ),
        400,
        "scheduled_charges.0.schedule.do_not_invoice: applies to commits' invoice schedules only",
    ),
    (
        "scheduled charge priced in both ways",
        lambda b, c: b.update(
            scheduled_charges=[
                {
                    "product_id": c["fixed"],
                    "schedule": {"schedule_items": [{"timestamp": JAN, "amount": 1, "quantity": 2}]},
                }
            ]
        ),
        400,
        "scheduled_charges.0.schedule.schedule_items.0.amount: give either amount or unit_price with quantity",
    ),
    (
        "consolidation onto usage invoices of an unknown kind",
        lambda b, c: b.update(scheduled_charges_on_usage_invoices="SOME"),
        400,
        "scheduled_charges_on_usage_invoices:",
    ),
    (
        "deprecated amount that differs",
        lambda b, c: commit0(b).update(amount=150),
        400,
        "commits.0.amount: is deprecated",
    ),
    (
        "applicable product unknown",
        lambda b, c: commit0(b).update(applicable_product_ids=[c["usage"], MISSING_ID]),
        400,
        "commits.0.applicable_product_ids.1: no product with id",
    ),
    (
        "specifiers with applicable tags",
        lambda b, c: commit0(b).update(applicable_product_tags=["a"], specifiers=[{"product_tags": ["b"]}]),
        400,
        "commits.0.specifiers: cannot be used together with applicable_product_ids or applicable_product_tags",
    ),
    (
        "empty specifier",
        lambda b, c: commit0(b).update(specifiers=[{}]),
        400,
        "commits.0.specifiers.0: give at least one of",
    ),
    (
        "specifier product unknown",
        lambda b, c: commit0(b).update(specifiers=[{"product_id": MISSING_ID}]),
        400,
        "commits.0.specifiers.0.product_id: no product with id",
    ),
    (
        "commit rate",
        lambda b, c: commit0(b).update(rate_type="COMMIT_RATE"),
        400,
        "commits.0.rate_type: meterline does not support COMMIT_RATE yet",
    ),
    ("unknown commit type", lambda b, c: commit0(b).update(type="LATER"), 400, "commits.0.type:"),
    (
        "rollover fraction above one",
        lambda b, c: commit0(b).update(rollover_fraction=1.5),
        400,
        "commits.0.rollover_fraction:",
    ),
    (
        "temporary id",
        lambda b, c: commit0(b).update(temporary_id="t1"),
        400,
        "commits.0.temporary_id: meterline does not support this field yet",
    ),
    (
        "unknown commit field",
        lambda b, c: commit0(b).update(bogus=1),
        400,
        "commits.0.bogus: unknown field",
    ),
    (
        "credit without access schedule",
        lambda b, c: b["credits"][0].pop("access_schedule"),
        400,
        "credits.0.access_schedule: is required",
    ),
    (
        "credit with an invoice schedule",
        lambda b, c: b["credits"][0].update(invoice_schedule=invoice(5, JAN)),
        400,
        "credits.0.invoice_schedule: unknown field",
    ),
    (
        "credit item ends before it starts",
        lambda b, c: b["credits"][0].update(access_schedule=access(5, FEB, JAN)),
        400,
        "credits.0.access_schedule.schedule_items.0.ending_before: must be after starting_at",
    ),
    (
        "override ends before it starts",
        lambda b, c: override0(b).update(ending_before=JAN),
        400,
        "overrides.0.ending_before: must be after starting_at",
    ),
    (
        "override off the hour",
        lambda b, c: override0(b).update(starting_at=JAN + timedelta(minutes=1)),
        400,
        "overrides.0.starting_at: must be on an hour boundary",
    ),
    (
        "override without target",
        lambda b, c: override0(b).pop("product_id"),
        400,
        "overrides.0: give one of product_id, applicable_product_tags or override_specifiers",
    ),
    (
        "override with two targets",
        lambda b, c: override0(b).update(applicable_product_tags=["compute"]),
        400,
        "overrides.0: give only one of product_id, applicable_product_tags or override_specifiers",
    ),
    (
        "override product unknown",
        lambda b, c: override0(b).update(product_id=MISSING_ID),
        400,
        "overrides.0.product_id: no product with id",
    ),
    (
        "multiplier missing",
        lambda b, c: override0(b).pop("multiplier"),
        400,
        "overrides.0.multiplier: is required for MULTIPLIER overrides",
    ),
    (
        "multiplier zero",
        lambda b, c: override0(b).update(multiplier=0),
        400,
        "overrides.0.multiplier: must be greater than 0",
    ),
    (
        "multiplier with an overwrite",
        lambda b, c: override0(b).update(overwrite_rate={"rate_type": "FLAT", "price": 1}),
        400,
        "overrides.0.overwrite_rate: only OVERWRITE overrides have one",
    ),
    (
        "overwrite without rate",
        lambda b, c: override0(b).update(type="OVERWRITE", multiplier=None),
        400,
        "overrides.0.overwrite_rate: is required for OVERWRITE overrides",
    ),
    (
        "overwrite with a multiplier",
        lambda b, c: override0(b).update(type="OVERWRITE", overwrite_rate={"rate_type": "FLAT", "price": 1}),
        400,
        "overrides.0.multiplier: only MULTIPLIER overrides have one",
    ),
    (
        "overwrite FLAT without price",
        lambda b, c: override0(b).update(
            type="OVERWRITE", multiplier=None, overwrite_rate={"rate_type": "FLAT"}
        ),
        400,
        "overrides.0.overwrite_rate.price: is required for FLAT rates",
    ),
    (
        "overwrite tier without size",
        lambda b, c: override0(b).update(
            type="OVERWRITE",
            multiplier=None,
            overwrite_rate={"rate_type": "TIERED", "tiers": [{"price": 1}, {"price": 2}]},
        ),
        400,
        "overrides.0.overwrite_rate.tiers.0.size: is required on every tier but the last",
    ),
    (
        "overwrite PERCENTAGE",
        lambda b, c: override0(b).update(
            type="OVERWRITE", multiplier=None, overwrite_rate={"rate_type": "PERCENTAGE", "price": 0.1}
        ),
        400,
        "overrides.0.overwrite_rate.rate_type: meterline does not support PERCENTAGE rates yet",
    ),
    (
        "overwrite in a unit the rate card cannot convert",
        lambda b, c: override0(b).update(
            type="OVERWRITE",
            multiplier=None,
            overwrite_rate={"rate_type": "FLAT", "price": 1, "credit_type_id": c["unit"]},
        ),
        400,
        "overrides.0.overwrite_rate.credit_type_id: the contract's rate card neither is priced in nor converts",
    ),
    (
        "tiered override",
        lambda b, c: override0(b).update(type="TIERED"),
        400,
        "overrides.0.type: meterline does not support TIERED overrides yet",
    ),
    (
        "explicit prioritization without priority",
        lambda b, c: b.update(multiplier_override_prioritization="EXPLICIT"),
        400,
        "overrides.0.priority: is required for MULTIPLIER overrides when multiplier_override_prioritization is EXPLICIT",
    ),
    (
        "priority zero",
        lambda b, c: override0(b).update(priority=0),
        400,
        "overrides.0.priority: must be greater than 0",
    ),
    (
        "empty override specifier",
        lambda b, c: (override0(b).pop("product_id"), override0(b).update(override_specifiers=[{}])),
        400,
        "overrides.0.override_specifiers.0: give at least one of",
    ),
    (
        "override specifier with two tags",
        lambda b, c: (
            override0(b).pop("product_id"),
            override0(b).update(override_specifiers=[{"product_tags": ["a", "b"]}]),
        ),
        400,
        "overrides.0.override_specifiers.0.product_tags: meterline does not support more than one tag",
    ),
    (
        "override specifier product unknown",
        lambda b, c: (
            override0(b).pop("product_id"),
            override0(b).update(override_specifiers=[{"product_id": MISSING_ID}]),
        ),
        400,
        "overrides.0.override_specifiers.0.product_id: no product with id",
    ),
    (
        "commit-specific override specifier",
        lambda b, c: (
            override0(b).pop("product_id"),
            override0(b).update(override_specifiers=[{"product_id": c["usage"], "commit_ids": ["x"]}]),
        ),
        400,
        "overrides.0.override_specifiers.0.commit_ids: meterline does not support this field yet",
    ),
    (
        "commit-specific override",
        lambda b, c: override0(b).update(is_commit_specific=True),
        400,
        "overrides.0.is_commit_specific: meterline does not support commit-specific overrides yet",
    ),
    (
        "override target",
        lambda b, c: override0(b).update(target="LIST_RATE"),
        400,
        "overrides.0.target: meterline does not support this field yet",
    ),
    (
        "invoice generation start",
        lambda b, c: b.update(
            usage_statement_schedule={"frequency": "MONTHLY", "invoice_generation_starting_at": FEB}
        ),
        400,
        "usage_statement_schedule.invoice_generation_starting_at: meterline does not support this field yet",
    ),
]


@pytest.mark.parametrize(("mutate", "status", "expected"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_is_refused_naming_the_field(
    client: Metronome, catalog: dict[str, str], mutate: Mutation, status: int, expected: str
) -> None:
    body = valid_body(catalog)
    mutate(body, catalog)
    message = error_of(lambda: client.v1.contracts.create(**body), status)
    assert message.startswith(expected), message


def test_the_valid_body_of_the_rule_tests_is_accepted(client: Metronome, catalog: dict[str, str]) -> None:
    assert create(client, **valid_body(catalog))


UNSUPPORTED: list[tuple[str, Any]] = [
    ("discounts", [{"product_id": MISSING_ID, "schedule": {"schedule_items": []}}]),
    ("hierarchy_configuration", {"parent": {"contract_id": MISSING_ID, "customer_id": MISSING_ID}}),
    ("netsuite_sales_order_id", "SO-1"),
    ("package_alias", "pkg"),
    ("package_id", MISSING_ID),
    ("professional_services", [{"max_amount": 1, "product_id": MISSING_ID, "quantity": 1, "unit_price": 1}]),
    ("reseller_royalties", [{"fraction": 0.1}]),
    ("revenue_system_configuration", {"provider": "netsuite"}),
    ("spend_trackers", [{"alias": "t"}]),
    ("usage_filter", {"group_key": "region", "group_values": ["eu"]}),
]


@pytest.mark.parametrize(("field", "value"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_fields_meterline_does_not_support_yet_are_refused(
    client: Metronome, catalog: dict[str, str], field: str, value: Any
) -> None:
    body = valid_body(catalog)
    message = error_of(lambda: client.v1.contracts.create(**body, **{field: value}), 400)
    assert message == f"{field}: meterline does not support this field yet"


def test_unknown_fields_are_refused(client: Metronome, catalog: dict[str, str]) -> None:
    body = valid_body(catalog)
    message = error_of(lambda: client.v1.contracts.create(**body, extra_body={"bogus": 1}), 400)
    assert message == "bogus: unknown field"


def test_references_that_are_archived_are_refused(client: Metronome) -> None:
    customer_id, card = new_customer(client), new_card(client)
    archived_card = new_card(client)
    client.v1.contracts.rate_cards.archive(id=archived_card)
    message = error_of(
        lambda: create(client, customer_id=customer_id, rate_card_id=archived_card, starting_at=JAN), 400
    )
    assert message == f"rate_card_id: rate card {archived_card} is archived"
    client.v1.customers.archive(id=customer_id)
    message = error_of(
        lambda: create(client, customer_id=customer_id, rate_card_id=card, starting_at=JAN), 400
    )
    assert message == f"customer_id: customer {customer_id} is archived"


def test_a_refused_contract_stores_nothing(client: Metronome) -> None:
    customer_id, fixed, card = new_customer(client), new_fixed_product(client), new_card(client)
    key = f"commit-{uid()}"
    message = error_of(
        lambda: create(
            client,
            customer_id=customer_id,
            rate_card_id=card,
            starting_at=JAN,
            commits=[
                {
                    "type": "PREPAID",
                    "product_id": fixed,
                    "access_schedule": access(1, JAN, FEB),
                    "uniqueness_key": key,
                },
                {
                    "type": "PREPAID",
                    "product_id": fixed,
                    "access_schedule": access(1, JAN, FEB),
                    "uniqueness_key": key,
                },
            ],
        ),
        409,
    )
    assert message == "commits.1.uniqueness_key: This uniqueness key has already been used."
    assert contract_ids(client, customer_id, include_archived=True) == []
    assert (
        list(client.v1.customers.commits.list(customer_id=customer_id, include_contract_commits=True)) == []
    )


# What the billing engine reads


def test_engine_reads_the_contract_terms(client: Metronome, db: Database) -> None:
    customer_id, fixed, usage, card = (
        new_customer(client),
        new_fixed_product(client),
        new_usage_product(client),
        new_card(client),
    )
    contract_id = create(
        client,
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=JAN,
        ending_before=JUN,
        usage_statement_schedule={
            "frequency": "MONTHLY",
            "day": "CUSTOM_DATE",
            "billing_anchor_date": JAN + timedelta(days=14),
        },
        multiplier_override_prioritization="EXPLICIT",
        commits=[
            {
                "type": "PREPAID",
                "product_id": fixed,
                "access_schedule": access(100, JAN, FEB),
                "invoice_schedule": invoice(80, JAN, do_not_invoice=True),
                "priority": 2,
                "applicable_product_ids": [usage],
            },
            {"type": "PREPAID", "product_id": fixed, "access_schedule": access(50, JAN, FEB)},
            {
                "type": "PREPAID",
                "product_id": fixed,
                "access_schedule": access(50, JAN, FEB),
                "invoice_schedule": invoice(50, JAN, do_not_invoice=True),
            },
        ],
        credits=[
            {
                "product_id": fixed,
                "access_schedule": access(7, FEB, MAR),
                "specifiers": [{"product_tags": ["x"]}],
            }
        ],
        overrides=[
            {"starting_at": FEB, "type": "MULTIPLIER", "multiplier": 0.8, "priority": 3, "product_id": usage},
            {
                "starting_at": JAN,
                "ending_before": MAR,
                "type": "OVERWRITE",
                "override_specifiers": [
                    {"product_id": usage},
                    {"product_tags": ["gpu"], "pricing_group_values": {"region": "eu"}},
                ],
                "overwrite_rate": {"rate_type": "TIERED", "tiers": [{"price": 2, "size": 5}, {"price": 1}]},
            },
        ],
    )
    archived = create(client, customer_id=customer_id, rate_card_id=card, starting_at=FEB)
    client.v1.contracts.archive(customer_id=customer_id, contract_id=archived, void_invoices=False)
    shown = get(client, customer_id, contract_id).current

    with db.read() as conn:
        [terms] = contract_store.contracts_for_customer(conn, customer_id)
        found = {c.id: c for c in commit_store.commits_for_customer(conn, customer_id)}
    assert terms.id == contract_id and terms.customer_id == customer_id and terms.rate_card_id == card
    assert (terms.starting_at_us, terms.ending_before_us) == (to_us(JAN), to_us(JUN))
    assert (terms.frequency, terms.anchor_day) == (Frequency.MONTHLY, AnchorDay.CUSTOM_DATE)
    assert terms.billing_anchor_us == to_us(JAN + timedelta(days=14))
    assert terms.explicit_override_priority is True
    multiplier, by_product, by_tag = terms.overrides
    assert (multiplier.multiplier, multiplier.priority, multiplier.product_id) == (
        Decimal("0.8"),
        Decimal(3),
        usage,
    )
    assert multiplier.starting_at_us == to_us(FEB) and multiplier.ending_before_us is None
    tiers = PriceSpec(tiers=(Tier(Decimal(2), Decimal(5)), Tier(Decimal(1))))
    assert by_product.overwrite == tiers and by_product.product_id == usage
    assert by_tag.overwrite == tiers and by_tag.product_tags == frozenset({"gpu"})
    assert by_tag.pricing_group_values == {"region": "eu"}
    assert by_product.id == by_tag.id == shown.overrides[1].id

    paid, complimentary, not_invoiced = shown.commits  # "paid" once commits are invoiced
    [credit] = shown.credits or []
    assert set(found) == {paid.id, complimentary.id, not_invoiced.id, credit.id}
    assert found[paid.id].is_paid is False
    assert found[complimentary.id].is_paid is False
    assert found[not_invoiced.id].is_paid is False
    assert found[credit.id].is_paid is False and found[credit.id].kind == "CREDIT"
    assert found[paid.id].priority == 2
    assert found[paid.id].applicable_product_ids == frozenset({usage})
    assert found[credit.id].specifiers == ({"product_tags": ["x"]},)
    assert paid.access_schedule is not None
    [segment] = found[paid.id].segments
    assert segment.id == paid.access_schedule.schedule_items[0].id
    assert (segment.amount, segment.starting_at_us, segment.ending_before_us) == (
        Decimal(100),
        to_us(JAN),
        to_us(FEB),
    )
    assert all(c.contract_id == contract_id and c.customer_id == customer_id for c in found.values())
