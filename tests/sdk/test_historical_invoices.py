"""contracts/createHistoricalInvoices through the Metronome SDK: history moved over as FINALIZED
invoices priced by the contract (rates, tiers, overrides), previewed or stored, and refusals.

The contract has weekly periods from 60 days ago: its first three weeks ended before the 34 days
events may still reach, so meterline never billed them from usage.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from metronome import Metronome

from tests.sdk.billing_helpers import (
    check_totals,
    exact,
    invoice_of,
    invoices,
    lines,
    usage_by_product,
    wait_status,
)
from tests.sdk.contract_helpers import USD_CENTS, error_of, new_unit
from tests.sdk.helpers import current_hour, rfc3339, uid

D = Decimal
WEEK = timedelta(days=7)


def _setup(client: Metronome) -> tuple[str, str, str, str, datetime]:
    """(customer, contract, compute product, storage product, contract start)."""
    start = current_hour() - timedelta(days=60)
    metric = client.v1.billable_metrics.create(
        name=f"calls {uid()}", aggregation_type="COUNT", event_type_filter={"in_values": [f"c_{uid()}"]}
    ).data.id
    grouped = client.v1.billable_metrics.create(
        name=f"bytes {uid()}",
        aggregation_type="COUNT",
        event_type_filter={"in_values": [f"b_{uid()}"]},
        group_keys=[["region"]],
    ).data.id
    compute = client.v1.contracts.products.create(
        name=f"compute {uid()}", type="USAGE", billable_metric_id=metric
    ).data.id
    storage = client.v1.contracts.products.create(
        name=f"storage {uid()}", type="USAGE", billable_metric_id=grouped, pricing_group_key=["region"]
    ).data.id
    card = client.v1.contracts.rate_cards.create(name=f"card {uid()}").data.id
    client.v1.contracts.rate_cards.rates.add_many(
        rate_card_id=card,
        rates=[
            {"product_id": compute, "entitled": True, "rate_type": "FLAT", "price": 2, "starting_at": start},
            {
                "product_id": storage,
                "entitled": True,
                "rate_type": "TIERED",
                "tiers": [{"price": 3, "size": 10}, {"price": 1}],
                "starting_at": start,
                "pricing_group_values": {"region": "us"},
            },
        ],
    )
    customer = client.v1.customers.create(name=f"customer {uid()}").data.id
    contract = client.v1.contracts.create(
        customer_id=customer,
        rate_card_id=card,
        starting_at=start,
        usage_statement_schedule={"frequency": "WEEKLY", "day": "CONTRACT_START"},
        overrides=[
            {"type": "MULTIPLIER", "multiplier": 0.5, "product_id": compute, "starting_at": start + WEEK}
        ],
    ).data.id
    return customer, contract, compute, storage, start


def _invoice(
    customer: str, contract: str, start: datetime, *items: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "contract_id": contract,
        "credit_type_id": USD_CENTS,
        "inclusive_start_date": start,
        "exclusive_end_date": start + WEEK,
        "issue_date": start + WEEK + timedelta(days=1),
        "usage_line_items": list(items),
        **fields,
    }


def _line(product: str, start: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "product_id": product,
        "inclusive_start_date": start,
        "exclusive_end_date": start + WEEK,
        **fields,
    }


def _create(client: Metronome, preview: bool, *given: dict[str, Any]) -> list[Any]:
    raw = client.v1.contracts.with_raw_response.create_historical_invoices(
        invoices=list(given), preview=preview
    )  # type: ignore[arg-type]
    data: list[Any] = exact(raw)["data"]
    return data


def test_history_is_priced_by_the_contract_and_closes_its_periods(client: Metronome) -> None:
    customer, contract, compute, storage, start = _setup(client)
    first = _invoice(
        customer,
        contract,
        start,
        _line(compute, start, quantity=100),
        _line(storage, start, quantity=15, pricing_group_values={"region": "us"}),
    )
    second_start = start + WEEK
    second = _invoice(
        customer,
        contract,
        second_start,
        _line(
            compute,
            second_start,
            subtotals_with_quantity=[
                {
                    "inclusive_start_date": second_start,
                    "exclusive_end_date": second_start + timedelta(days=1),
                    "quantity": 60,
                },
                {
                    "inclusive_start_date": second_start + timedelta(days=1),
                    "exclusive_end_date": second_start + WEEK,
                    "quantity": 40,
                },
            ],
        ),
    )

    # Preview: 100 x 2 = 200, and 10 x 3 + 5 x 1 = 35 of graduated storage: 235. Nothing stored.
    [shown] = _create(client, True, first)
    assert (shown["subtotal"], shown["total"], shown["status"]) == (235, 235, "FINALIZED")
    # (Weeks ended since the backdating limit are billed from usage, with no invoice from this.)
    assert invoice_of(client, customer, start) is None and invoice_of(client, customer, second_start) is None

    made = _create(client, False, first, second)
    assert [(i["subtotal"], i["total"]) for i in made] == [(235, 235), (100, 100)]  # 100 x 2 x 0.5
    stored = {i["start_timestamp"]: i for i in invoices(client, customer, status="FINALIZED")}
    one = stored[rfc3339(start)]
    assert one["id"] == made[0]["id"] and one["contract_id"] == contract
    assert one["issued_at"] == rfc3339(start + WEEK + timedelta(days=1))
    assert (one["start_timestamp"], one["end_timestamp"]) == (rfc3339(start), rfc3339(start + WEEK))
    by_product = usage_by_product(one)
    assert (
        by_product[compute]["quantity"],
        by_product[compute]["unit_price"],
        by_product[compute]["total"],
    ) == (100, 2, 200)
    assert by_product[storage]["total"] == 35
    assert lines(one, "applied_commit_or_credit") == []
    for invoice in stored.values():
        check_totals(invoice)
    assert usage_by_product(stored[rfc3339(second_start)])[compute]["unit_price"] == 1

    message = error_of(lambda: _create(client, False, first), 409)
    assert message.startswith("invoices.0.inclusive_start_date: the period has a FINALIZED invoice already")


def test_history_refusals_name_the_invoice_and_line(client: Metronome) -> None:
    customer, contract, compute, storage, start = _setup(client)
    third = start + 2 * WEEK

    def refused(status: int = 400, *items: dict[str, Any], **fields: Any) -> str:
        given = _invoice(
            customer, contract, third, *(items or (_line(compute, third, quantity=1),)), **fields
        )
        return error_of(lambda: _create(client, False, given), status)

    message = refused(
        inclusive_start_date=third + timedelta(days=1), exclusive_end_date=third + WEEK + timedelta(days=1)
    )
    assert message.startswith("invoices.0.inclusive_start_date: must start a billing period of the contract")
    assert "credit_type_id" in refused(credit_type_id=new_unit(client))
    assert refused(400, _line(storage, third, quantity=1)).startswith(
        "invoices.0.usage_line_items.0.product_id:"
    )
    assert refused(400, _line(compute, third)).startswith("invoices.0.usage_line_items.0")  # no quantity
    assert "usage_line_items.0.inclusive_start_date" in refused(400, _line(compute, start, quantity=1))
    assert "billable_status" in refused(billable_status="unbillable")
    assert "custom_fields" in refused(custom_fields={"po": "1"})
    now_week = current_hour() - timedelta(days=3)
    assert "exclusive_end_date" in refused(inclusive_start_date=now_week, exclusive_end_date=now_week + WEEK)
    assert "contract_id" in refused(404, contract_id="00000000-0000-4000-8000-0000000000dd")
    # A period meterline finalized itself from usage is not billed twice.
    finalized = wait_status(client, customer, start + 7 * WEEK, "FINALIZED")
    before = invoices(client, customer, status="FINALIZED")
    period = datetime.fromisoformat(finalized["start_timestamp"])
    message = refused(
        409, _line(compute, period, quantity=1), inclusive_start_date=period, exclusive_end_date=period + WEEK
    )
    assert "FINALIZED invoice already" in message
    assert invoices(client, customer, status="FINALIZED") == before  # nothing was stored
