"""What the bench creates over the HTTP API, as an application would: the pricing catalog (a COUNT
metric, a usage product, a TIERED rate card, the product commits are sold as), customers with a
contract, a prepaid commit and three alerts, and the webhook endpoint of the receiver."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.plan import EVENT_TYPE, FIRST_TIER_PRICE, LATER_PRICE, Plan, alert_name


@dataclass(frozen=True)
class Catalog:
    metric_id: str
    product_id: str
    commit_product_id: str
    rate_card_id: str


def month_start() -> str:
    start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def _data(response: httpx.Response) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url.path} answered {response.status_code}: {response.text}")
    return response.json()["data"]


def create_catalog(client: httpx.Client, plan: Plan) -> Catalog:
    metric = _data(
        client.post(
            "/v1/billable-metrics/create",
            json={
                "name": "api calls",
                "aggregation_type": "COUNT",
                "event_type_filter": {"in_values": [EVENT_TYPE]},
            },
        )
    )["id"]
    product = _data(
        client.post(
            "/v1/contract-pricing/products/create",
            json={"name": "API calls", "type": "USAGE", "billable_metric_id": metric},
        )
    )["id"]
    commit_product = _data(
        client.post("/v1/contract-pricing/products/create", json={"name": "Prepaid", "type": "FIXED"})
    )["id"]
    rate_card = _data(client.post("/v1/contract-pricing/rate-cards/create", json={"name": "bench"}))["id"]
    client.post(
        "/v1/contract-pricing/rate-cards/addRate",
        json={
            "rate_card_id": rate_card,
            "product_id": product,
            "entitled": True,
            "rate_type": "TIERED",
            "starting_at": month_start(),
            "tiers": [
                {"price": int(FIRST_TIER_PRICE), "size": plan.tier_events},
                {"price": int(LATER_PRICE)},
            ],
        },
    ).raise_for_status()
    return Catalog(metric, product, commit_product, rate_card)


def create_customer(client: httpx.Client, catalog: Catalog, plan: Plan, alias: str) -> str:
    """A customer with the alias, a contract with a prepaid commit, and the plan's three alerts."""
    customer = str(_data(client.post("/v1/customers", json={"name": alias, "ingest_aliases": [alias]}))["id"])
    _data(
        client.post(
            "/v1/contracts/create",
            json={
                "customer_id": customer,
                "rate_card_id": catalog.rate_card_id,
                "starting_at": month_start(),
                "commits": [
                    {
                        "type": "PREPAID",
                        "product_id": catalog.commit_product_id,
                        "priority": 1,
                        "access_schedule": {
                            "schedule_items": [
                                {
                                    "amount": int(plan.commit_amount),
                                    "starting_at": month_start(),
                                    "ending_before": "2099-01-01T00:00:00Z",
                                }
                            ]
                        },
                    }
                ],
            },
        )
    )
    for spec in plan.alerts:
        _data(
            client.post(
                "/v1/alerts/create",
                json={
                    "customer_id": customer,
                    "name": alert_name(spec.kind, alias),
                    "alert_type": spec.alert_type,
                    "threshold": int(spec.threshold),
                },
            )
        )
    return customer


def customer_alerts(client: httpx.Client, customer_id: str) -> list[dict[str, Any]]:
    """The customer's enabled alerts with their `customer_status`."""
    response = client.post("/v1/customer-alerts/list", json={"customer_id": customer_id})
    found: list[dict[str, Any]] = _data(response)
    return found


def customer_by_alias(client: httpx.Client, alias: str) -> dict[str, Any] | None:
    found = _data(client.get("/v1/customers", params={"ingest_alias": alias}))
    return found[0] if found else None


def register_webhook(client: httpx.Client, url: str) -> str:
    """An endpoint with no type filter: every alerts.* notification but the _resolved ones."""
    return str(_data(client.post("/v1/webhooks/endpoints/create", json={"url": url}))["id"])
