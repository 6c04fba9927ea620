"""Helpers for the alert SDK tests: a billed customer of one's own, usage, alert status and the outbox.

Usage is a SUM over the event property `qty` of an event type unique to the test, priced per unit
on a rate card of the test's own, on a contract starting in January 2024 (monthly periods on the
1st, so the period in force is the current calendar month). Notifications are read from the
server's outbox table (see tests/support/outbox.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from metronome import Metronome
from metronome.types.v1.customers.customer_alert import CustomerAlert

from tests.sdk.contract_helpers import FAR, JAN
from tests.sdk.helpers import event, hours_ago, settle, uid
from tests.support.outbox import Payload, notifications_for
from tests.support.server import RunningServer
from tests.support.waiting import wait_for

D = Decimal
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Usage:
    """A USAGE product billed on a SUM of `qty` over events of `event_type`."""

    product_id: str
    metric_id: str
    event_type: str


def usage_product(client: Metronome, *, group_key: str | None = None) -> Usage:
    """A product of its own; with `group_key`, usage lines are presented per value of that key."""
    event_type = f"alerts_{uid()}"
    metric_fields: dict[str, Any] = {"group_keys": [[group_key]]} if group_key else {}
    metric_id = client.v1.billable_metrics.create(
        name=f"qty {event_type}",
        aggregation_type="SUM",
        aggregation_key="qty",
        event_type_filter={"in_values": [event_type]},
        **metric_fields,
    ).data.id
    product_fields: dict[str, Any] = {}
    if group_key:
        product_fields["presentation_group_key"] = [group_key]
    product_id = client.v1.contracts.products.create(
        name=f"product {event_type}", type="USAGE", billable_metric_id=metric_id, **product_fields
    ).data.id
    return Usage(product_id, metric_id, event_type)


def fixed_product(client: Metronome) -> str:
    return client.v1.contracts.products.create(name=f"commit {uid()}", type="FIXED").data.id


def rate_card(client: Metronome, *prices: tuple[str, float]) -> str:
    """A rate card with a FLAT price (in cents per unit) for each product since January 2024."""
    card = client.v1.contracts.rate_cards.create(name=f"rate card {uid()}").data.id
    if not prices:
        return card
    client.v1.contracts.rate_cards.rates.add_many(
        rate_card_id=card,
        rates=[
            {"product_id": p, "entitled": True, "rate_type": "FLAT", "price": price, "starting_at": JAN}
            for p, price in prices
        ],
    )
    return card


def contract(client: Metronome, customer_id: str, card: str, **fields: Any) -> str:
    fields.setdefault("starting_at", JAN)
    return client.v1.contracts.create(customer_id=customer_id, rate_card_id=card, **fields).data.id


def customer(client: Metronome) -> str:
    return client.v1.customers.create(name=f"alerts {uid()}").data.id


def billed_customer(client: Metronome, price: float = 100, **contract_fields: Any) -> tuple[str, Usage]:
    """A customer on a contract billing `price` cents per unit of its own usage product."""
    customer_id, usage, _card, _contract = billed_contract(client, price, **contract_fields)
    return customer_id, usage


def billed_contract(
    client: Metronome, price: float = 100, **contract_fields: Any
) -> tuple[str, Usage, str, str]:
    """`billed_customer`, with its rate card and contract: (customer, usage, rate card, contract)."""
    customer_id = customer(client)
    usage = usage_product(client)
    card = rate_card(client, (usage.product_id, price))
    return customer_id, usage, card, contract(client, customer_id, card, **contract_fields)


@dataclass(frozen=True)
class FinalizedWeek:
    """A contract of weekly periods from ten days ago with a prepaid commit: its first week ended
    three days ago, past the 24 h grace, and is finalized with 40 units sent before the contract."""

    customer_id: str
    usage: Usage
    rate_card_id: str
    contract_id: str
    commit_id: str
    start: datetime


def finalized_week(client: Metronome, commit: float, price: float = 1) -> FinalizedWeek:
    start = hours_ago(0) - timedelta(days=10)
    customer_id = customer(client)
    usage = usage_product(client)
    client.v1.usage.ingest(usage=[event(customer_id, usage.event_type, start + timedelta(hours=1), qty=40)])  # type: ignore[list-item]
    settle(client)
    card = rate_card(client, (usage.product_id, price))
    contract_id = contract(
        client,
        customer_id,
        card,
        starting_at=start,
        usage_statement_schedule={"frequency": "WEEKLY", "day": "CONTRACT_START"},
        commits=[
            {
                "type": "PREPAID",
                "product_id": fixed_product(client),
                "priority": 1,
                "access_schedule": segment(commit, start),
            }
        ],
    )
    [held] = client.v1.contracts.retrieve(
        customer_id=customer_id, contract_id=contract_id
    ).data.current.commits
    return FinalizedWeek(customer_id, usage, card, contract_id, held.id, start)


def segment(amount: float, starting_at: datetime = JAN, ending_before: datetime = FAR) -> dict[str, Any]:
    return {
        "schedule_items": [{"amount": amount, "starting_at": starting_at, "ending_before": ending_before}]
    }


def add_credit(client: Metronome, customer_id: str, amount: float, **fields: Any) -> str:
    fields.setdefault("access_schedule", segment(amount))
    fields.setdefault("priority", 1)
    return client.v1.customers.credits.create(
        customer_id=customer_id, product_id=fixed_product(client), **fields
    ).data.id


def add_commit(client: Metronome, customer_id: str, amount: float, **fields: Any) -> str:
    """A prepaid customer-level commit (free: no invoice schedule)."""
    fields.setdefault("access_schedule", segment(amount))
    fields.setdefault("priority", 1)
    fields.setdefault("type", "PREPAID")
    return client.v1.customers.commits.create(
        customer_id=customer_id, product_id=fixed_product(client), **fields
    ).data.id


def use(client: Metronome, customer_id: str, usage: Usage, qty: float, **properties: Any) -> None:
    """One event of `qty` units, in the current hour (the current billing period)."""
    client.v1.usage.ingest(
        usage=[event(customer_id, usage.event_type, hours_ago(0), qty=qty, **properties)]  # type: ignore[list-item]
    )


def create_alert(client: Metronome, **fields: Any) -> str:
    fields.setdefault("name", f"alert {uid()}")
    return client.v1.alerts.create(**fields).data.id


def customer_alert(client: Metronome, alert_id: str, customer_id: str, **params: Any) -> CustomerAlert:
    return client.v1.customers.alerts.retrieve(alert_id=alert_id, customer_id=customer_id, **params).data


def status(
    client: Metronome, alert_id: str, customer_id: str, **params: Any
) -> tuple[str | None, str | None]:
    """(customer_status, triggered_by)."""
    found = customer_alert(client, alert_id, customer_id, **params)
    return found.customer_status, found.triggered_by


def wait_status(
    client: Metronome, alert_id: str, customer_id: str, expected: tuple[str | None, str | None], **params: Any
) -> None:
    wait_for(lambda: status(client, alert_id, customer_id, **params), lambda got: got == expected)


def settled_status(
    client: Metronome, alert_id: str, customer_id: str, **params: Any
) -> tuple[str | None, str | None]:
    """The status once the evaluator has applied everything sent so far (for "did not move")."""
    settle(client)
    return status(client, alert_id, customer_id, **params)


def outbox(server: RunningServer, customer_id: str) -> list[Payload]:
    return notifications_for(server.database_url, customer_id)


def wait_outbox(server: RunningServer, customer_id: str, count: int) -> list[Payload]:
    """The customer's notifications once there are `count` of them."""
    return wait_for(lambda: outbox(server, customer_id), lambda found: len(found) >= count)


def settled_outbox(client: Metronome, server: RunningServer, customer_id: str) -> list[Payload]:
    """The customer's notifications once the evaluator has applied everything sent so far."""
    settle(client)
    return outbox(server, customer_id)


def rows(payloads: list[Payload], measure: str) -> list[tuple[str, str, Any]]:
    """(type, triggered_by, measure) of each notification."""
    return [(p["type"], p["properties"]["triggered_by"], p["properties"][measure]) for p in payloads]


def timestamp_of(payload: Payload) -> datetime:
    return datetime.fromisoformat(payload["properties"]["timestamp"].replace("Z", "+00:00"))


def days_between(later: datetime, earlier: datetime) -> Decimal:
    delta = later - earlier
    return D((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) / US_PER_DAY


def hour_in(days: float) -> datetime:
    """The start of an hour about `days` from now (contract and segment bounds are on the hour)."""
    return hours_ago(0) + timedelta(hours=round(days * 24))


def check_days(payload: Payload, ends: datetime) -> None:
    """remaining_days is the exact time from the evaluation (the notification's timestamp, to the
    millisecond) to `ends`, in days."""
    remaining = payload["properties"]["remaining_days"]
    expected = days_between(ends, timestamp_of(payload))
    assert abs(remaining - expected) < D(1) / 86_400_000, (remaining, expected)
