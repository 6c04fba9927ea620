"""Helpers for the end-to-end billing tests: a catalog of one's own, exact invoice reads, and checks
every invoice must pass.

Invoices and balances are read through the SDK's raw responses and parsed with Decimal, so amounts
are compared exactly (the SDK's typed models turn them into floats).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from metronome import Metronome

from tests.sdk.contract_helpers import FAR, JAN, USD_CENTS
from tests.sdk.helpers import current_hour, rfc3339, settle, uid
from tests.support.waiting import wait_for

D = Decimal
Json = dict[str, Any]


def month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(moment: datetime) -> datetime:
    start = month_start(moment)
    return month_start(start + timedelta(days=32))


def this_hour_and_period() -> tuple[datetime, datetime, datetime]:
    """The hour events are sent at, and the monthly billing period holding it."""
    now = current_hour()
    return now, month_start(now), next_month(now)


def exact(raw: Any) -> Any:
    """The JSON of an SDK raw response, every number a Decimal."""
    return json.loads(raw.http_response.text, parse_float=Decimal, parse_int=Decimal)


# Catalog


def metric(
    client: Metronome,
    *,
    aggregation: str = "COUNT",
    key: str | None = None,
    group_keys: Sequence[Sequence[str]] = (),
) -> tuple[str, str]:
    """A metric counting only an event type of its own: (metric id, event type)."""
    event_type = f"billing_{uid()}"
    fields: dict[str, Any] = {"group_keys": [list(k) for k in group_keys]} if group_keys else {}
    if key is not None:
        fields["aggregation_key"] = key
    metric_id = client.v1.billable_metrics.create(
        name=f"{aggregation.lower()} {event_type}",
        aggregation_type=aggregation,  # type: ignore[arg-type]
        event_type_filter={"in_values": [event_type]},
        **fields,
    ).data.id
    return metric_id, event_type


def product(client: Metronome, metric_id: str, **fields: Any) -> str:
    return client.v1.contracts.products.create(
        name=f"usage {uid()}", type="USAGE", billable_metric_id=metric_id, **fields
    ).data.id


def usage_product(
    client: Metronome,
    *,
    aggregation: str = "COUNT",
    key: str | None = None,
    group_keys: Sequence[Sequence[str]] = (),
    **product_fields: Any,
) -> tuple[str, str]:
    """A USAGE product on a metric of its own: (product id, event type)."""
    metric_id, event_type = metric(client, aggregation=aggregation, key=key, group_keys=group_keys)
    return product(client, metric_id, **product_fields), event_type


def fixed_product(client: Metronome) -> str:
    return client.v1.contracts.products.create(name=f"commit {uid()}", type="FIXED").data.id


def flat(product_id: str, price: float | int, **fields: Any) -> Json:
    return {
        "product_id": product_id,
        "entitled": True,
        "rate_type": "FLAT",
        "price": price,
        "starting_at": JAN,
        **fields,
    }


def tiered(product_id: str, tiers: list[Json], **fields: Any) -> Json:
    return {
        "product_id": product_id,
        "entitled": True,
        "rate_type": "TIERED",
        "tiers": tiers,
        "starting_at": JAN,
        **fields,
    }


def rate_card(client: Metronome, *rates: Json, **fields: Any) -> str:
    card = client.v1.contracts.rate_cards.create(name=f"rate card {uid()}", **fields).data.id
    if rates:
        client.v1.contracts.rate_cards.rates.add_many(rate_card_id=card, rates=list(rates))  # type: ignore[arg-type]
    return card


def contract(client: Metronome, customer_id: str, card: str, starting_at: datetime, **fields: Any) -> str:
    return client.v1.contracts.create(
        customer_id=customer_id, rate_card_id=card, starting_at=starting_at, **fields
    ).data.id


def segment(amount: float | int, starting_at: datetime, ending_before: datetime = FAR, **fields: Any) -> Json:
    """An access schedule of one segment."""
    return {
        "schedule_items": [{"amount": amount, "starting_at": starting_at, "ending_before": ending_before}],
        **fields,
    }


# Invoices


def invoices(client: Metronome, customer_id: str, **params: Any) -> list[Json]:
    found: list[Json] = exact(
        client.v1.customers.invoices.with_raw_response.list(customer_id=customer_id, **params)
    )["data"]
    return found


def invoice_of(client: Metronome, customer_id: str, period_start: datetime) -> Json | None:
    """The customer's invoice for the billing period starting at `period_start` (one contract)."""
    wanted = rfc3339(period_start)
    found = [i for i in invoices(client, customer_id) if i["start_timestamp"] == wanted]
    assert len(found) <= 1, found
    return found[0] if found else None


def wait_invoice(
    client: Metronome,
    customer_id: str,
    period_start: datetime,
    *,
    subtotal: Decimal,
    total: Decimal,
    fiat_per_unit: Mapping[str, Decimal] | None = None,
) -> Json:
    """Poll until the draft of the period shows `subtotal` and `total`; check its totals add up."""
    found = wait_for(
        lambda: invoice_of(client, customer_id, period_start),
        lambda inv: inv is not None and (inv["subtotal"], inv["total"]) == (subtotal, total),
    )
    assert found is not None
    check_totals(found, fiat_per_unit)
    return found


def settled_invoice(
    client: Metronome,
    customer_id: str,
    period_start: datetime,
    fiat_per_unit: Mapping[str, Decimal] | None = None,
) -> Json:
    """The invoice once the evaluator has applied everything sent so far (for "did not move")."""
    settle(client)
    found = invoice_of(client, customer_id, period_start)
    assert found is not None
    check_totals(found, fiat_per_unit)
    return found


def lines(invoice: Json, kind: str) -> list[Json]:
    return [item for item in invoice["line_items"] if item["type"] == kind]


def usage_by_product(invoice: Json) -> dict[str, Json]:
    found = {item["product_id"]: item for item in lines(invoice, "usage")}
    assert len(found) == len(lines(invoice, "usage")), "one usage line per product expected"
    return found


def applied_by_commit(invoice: Json) -> dict[str, Decimal]:
    """Amount each commit or credit covered (positive), from the applied_commit_or_credit lines."""
    found: dict[str, Decimal] = {}
    for item in lines(invoice, "applied_commit_or_credit"):
        applied = item["applied_commit_or_credit"]
        assert applied["id"] == item["commit_id"]
        found[applied["id"]] = found.get(applied["id"], D(0)) - item["total"]
    return found


def check_totals(invoice: Json, fiat_per_unit: Mapping[str, Decimal] | None = None) -> None:
    """What every usage invoice must satisfy, whatever the scenario.

    subtotal = usage and subscription charges in fiat (custom units converted at the rate card's rate);
    total = subtotal - prepaid commit and credit applications (postpaid ones do not count), which
    is also fiat usage - fiat applications + the cpu_conversion lines.
    """
    fiat = invoice["credit_type"]["id"]
    rates = {fiat: D(1), **(fiat_per_unit or {})}

    def in_fiat(item: Json) -> Decimal:
        converted: Decimal = item["total"] * rates[item["credit_type"]["id"]]
        return converted

    usage = lines(invoice, "usage") + lines(invoice, "subscription")
    deducted = [
        item
        for item in lines(invoice, "applied_commit_or_credit")
        if item["applied_commit_or_credit"]["type"] != "POSTPAID"
    ]
    conversions = lines(invoice, "cpu_conversion")
    assert all(item["total"] < 0 for item in lines(invoice, "applied_commit_or_credit"))
    if all(item["credit_type"]["id"] == fiat for item in usage):
        assert sum((item["total"] for item in usage), D(0)) == invoice["subtotal"]
        assert conversions == []
    assert sum((in_fiat(item) for item in usage), D(0)) == invoice["subtotal"]
    assert invoice["total"] == invoice["subtotal"] + sum((in_fiat(item) for item in deducted), D(0))
    fiat_part = sum((item["total"] for item in usage + deducted if item["credit_type"]["id"] == fiat), D(0))
    assert all(item["credit_type"]["id"] == fiat for item in conversions)
    assert invoice["total"] == fiat_part + sum((item["total"] for item in conversions), D(0))
    assert invoice["total"] >= 0


def wait_status(client: Metronome, customer_id: str, period_start: datetime, status: str) -> Json:
    """Run evaluator batches until the period's invoice has `status` (finalization needs a batch)."""

    def produce() -> Json | None:
        settle(client)
        return invoice_of(client, customer_id, period_start)

    found = wait_for(produce, lambda inv: inv is not None and inv["status"] == status)
    assert found is not None
    check_totals(found)
    return found


# Balances


def balances(client: Metronome, customer_id: str, **params: Any) -> dict[str, Json]:
    """Every commit and credit of the customer (contract ones too) with balance and ledger, by id."""
    params.setdefault("include_contract_balances", True)
    found = exact(
        client.v1.contracts.with_raw_response.list_balances(
            customer_id=customer_id, include_balance=True, include_ledgers=True, **params
        )
    )["data"]
    return {entry["id"]: entry for entry in found}


def net_balance(client: Metronome, customer_id: str, **params: Any) -> Decimal:
    params.setdefault("credit_type_id", USD_CENTS)
    found = exact(client.v1.contracts.with_raw_response.get_net_balance(customer_id=customer_id, **params))[
        "data"
    ]
    assert found["credit_type_id"] == params["credit_type_id"]
    balance: Decimal = found["balance"]
    return balance


def ledger(entry: Json) -> list[tuple[str, Decimal]]:
    return [(item["type"], item["amount"]) for item in entry["ledger"]]
