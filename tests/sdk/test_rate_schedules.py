"""Rate schedules through the Metronome SDK: a rate card's rates over a time range, and a
contract's rates at an instant with its overrides applied, with selectors, pagination and errors.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from metronome import Metronome

from tests.sdk.billing_helpers import exact, flat, month_start, rate_card, tiered
from tests.sdk.contract_helpers import MISSING_ID, USD_CENTS, error_of, new_unit, new_usage_product
from tests.sdk.helpers import current_hour, rfc3339, uid
from tests.support.server import RunningServer

D = Decimal


def _times() -> tuple[datetime, datetime, datetime, datetime]:
    """Four month starts, the second of them the current month's."""
    this_month = month_start(current_hour())
    previous = month_start(this_month - timedelta(days=1))
    following = month_start(this_month + timedelta(days=32))
    return previous, this_month, following, month_start(following + timedelta(days=32))


def _schedule(client: Metronome, **params: Any) -> list[Any]:
    raw = client.v1.contracts.rate_cards.with_raw_response.retrieve_rate_schedule(**params)
    data: list[Any] = exact(raw)["data"]
    return data


def _contract_schedule(client: Metronome, **params: Any) -> list[Any]:
    raw = client.v1.contracts.with_raw_response.retrieve_rate_schedule(**params)
    data: list[Any] = exact(raw)["data"]
    return data


def test_rate_card_schedule_shows_every_rate_in_the_range(client: Metronome) -> None:
    m0, m1, m2, m3 = _times()
    compute = new_usage_product(client, tags=["gpu"], custom_fields={"team": "ml"})
    storage = new_usage_product(client, pricing_group_key=["region"])
    card = rate_card(
        client,
        flat(compute, 3, starting_at=m0),
        flat(compute, 5, starting_at=m2),  # takes over from m2: the first now ends there
        flat(storage, 1, starting_at=m0, ending_before=m1, pricing_group_values={"region": "us"}),
        tiered(
            storage,
            [{"price": 2, "size": 10}, {"price": 1}],
            starting_at=m1,
            pricing_group_values={"region": "eu"},
        ),
    )
    everything = _schedule(client, rate_card_id=card, starting_at=m0)
    assert [(r["product_id"], r["starting_at"], r.get("ending_before")) for r in everything] == [
        (compute, rfc3339(m0), rfc3339(m2)),
        (storage, rfc3339(m0), rfc3339(m1)),
        (storage, rfc3339(m1), None),
        (compute, rfc3339(m2), None),
    ]
    first = everything[0]
    assert first["rate"] == {
        "rate_type": "FLAT",
        "price": D(3),
        "credit_type": {"id": USD_CENTS, "name": "USD (cents)"},
    }
    assert first["product_tags"] == ["gpu"] and first["product_custom_fields"] == {"team": "ml"}
    assert first["entitled"] is True
    assert everything[2]["rate"]["tiers"] == [{"price": D(2), "size": D(10)}, {"price": D(1)}]
    assert everything[2]["pricing_group_values"] == {"region": "eu"}

    # starting_at inclusive, ending_before exclusive.
    later = _schedule(client, rate_card_id=card, starting_at=m1, ending_before=m2)
    assert [(r["product_id"], r["starting_at"]) for r in later] == [
        (compute, rfc3339(m0)),
        (storage, rfc3339(m1)),
    ]
    assert [
        (r["product_id"], r["starting_at"]) for r in _schedule(client, rate_card_id=card, starting_at=m3)
    ] == [
        (storage, rfc3339(m1)),
        (compute, rfc3339(m2)),
    ]
    assert _schedule(client, rate_card_id=card, starting_at=m0, ending_before=m0 + timedelta(hours=1))[1][
        "pricing_group_values"
    ] == {"region": "us"}

    def products(*selectors: Any) -> list[tuple[str, str]]:
        found = _schedule(client, rate_card_id=card, starting_at=m0, selectors=list(selectors))
        return [(r["product_id"], r["starting_at"]) for r in found]

    assert products({"product_tags": ["gpu", "other"]}) == [(compute, rfc3339(m0)), (compute, rfc3339(m2))]
    assert products({"pricing_group_values": {"region": "eu"}}) == [(storage, rfc3339(m1))]
    assert products({"partial_pricing_group_values": {"region": "us"}}, {"product_id": compute}) == [
        (compute, rfc3339(m0)),
        (storage, rfc3339(m0)),
        (compute, rfc3339(m2)),
    ]
    assert products({"billing_frequency": "MONTHLY"}) == []

    page = client.v1.contracts.rate_cards.retrieve_rate_schedule(rate_card_id=card, starting_at=m0, limit=3)
    assert len(page.data) == 3 and page.next_page is not None
    rest = client.v1.contracts.rate_cards.retrieve_rate_schedule(
        rate_card_id=card, starting_at=m0, limit=3, next_page=page.next_page
    )
    assert [r.starting_at for r in rest.data] == [m2] and rest.next_page is None


def test_contract_schedule_applies_the_overrides_in_force(client: Metronome) -> None:
    m0, m1, m2, m3 = _times()
    unit = new_unit(client)
    compute = new_usage_product(client, tags=["gpu"])
    storage = new_usage_product(client, pricing_group_key=["region"])
    network = new_usage_product(client)
    card = rate_card(
        client,
        flat(compute, 10, starting_at=m0),
        tiered(
            storage,
            [{"price": 4, "size": 100}, {"price": 2}],
            starting_at=m0,
            pricing_group_values={"region": "us"},
        ),
        flat(storage, 6, starting_at=m0, pricing_group_values={"region": "eu"}),
        flat(network, 1, starting_at=m0, ending_before=m3),
        credit_type_conversions=[{"custom_credit_type_id": unit, "fiat_per_custom_credit": 2}],
    )
    customer = client.v1.customers.create(name=f"customer {uid()}").data.id
    contract = client.v1.contracts.create(
        customer_id=customer,
        rate_card_id=card,
        starting_at=m0,
        overrides=[
            # Compute at 0.8 then 0.5 of list (the lowest multiplier wins while both hold).
            {"type": "MULTIPLIER", "multiplier": 0.8, "product_id": compute, "starting_at": m0},
            {
                "type": "MULTIPLIER",
                "multiplier": 0.5,
                "applicable_product_tags": ["gpu"],
                "starting_at": m1,
                "ending_before": m2,
            },
            # US storage overwritten, in the custom unit; EU storage untouched.
            {
                "type": "OVERWRITE",
                "override_specifiers": [{"product_id": storage, "pricing_group_values": {"region": "us"}}],
                "overwrite_rate": {"rate_type": "FLAT", "price": 3, "credit_type_id": unit},
                "starting_at": m1,
            },
            {
                "type": "OVERWRITE",
                "product_id": network,
                "entitled": False,
                "starting_at": m2,
                "overwrite_rate": {"rate_type": "FLAT", "price": 0},
            },
        ],
    ).data.id

    def at(moment: datetime, **params: Any) -> dict[tuple[str, str | None], Any]:
        found = _contract_schedule(client, customer_id=customer, contract_id=contract, at=moment, **params)
        return {(r["product_id"], (r.get("pricing_group_values") or {}).get("region")): r for r in found}

    early = at(m0 + timedelta(days=3))
    assert early[(compute, None)]["list_rate"]["price"] == D(10)
    assert early[(compute, None)]["override_rate"] == {
        "rate_type": "FLAT",
        "price": D(8),  # 10 x 0.8
        "credit_type": {"id": USD_CENTS, "name": "USD (cents)"},
    }
    assert (early[(compute, None)]["starting_at"], early[(compute, None)]["ending_before"]) == (
        rfc3339(m0),
        rfc3339(m1),
    )
    assert early[(compute, None)]["rate_card_id"] == card
    assert "override_rate" not in early[(storage, "us")]
    assert early[(storage, "us")]["list_rate"]["tiers"] == [{"price": D(4), "size": D(100)}, {"price": D(2)}]
    assert early[(storage, "us")]["ending_before"] == rfc3339(m1)  # the overwrite starts there
    assert "ending_before" not in early[(storage, "eu")]
    assert early[(network, None)]["ending_before"] == rfc3339(m2)

    middle = at(m1)
    assert middle[(compute, None)]["override_rate"]["price"] == D(5)  # 10 x 0.5, the lower multiplier
    assert (middle[(compute, None)]["starting_at"], middle[(compute, None)]["ending_before"]) == (
        rfc3339(m1),
        rfc3339(m2),
    )
    us = middle[(storage, "us")]["override_rate"]
    assert (us["rate_type"], us["price"], us["credit_type"]["id"]) == ("FLAT", D(3), unit)
    assert "override_rate" not in middle[(storage, "eu")]

    late = at(m2 + timedelta(hours=5))
    assert late[(compute, None)]["override_rate"]["price"] == D(8)
    assert "ending_before" not in late[(compute, None)]
    assert late[(network, None)]["entitled"] is False
    assert late[(network, None)]["override_rate"]["price"] == D(0)
    assert late[(network, None)]["ending_before"] == rfc3339(m3)  # the rate's own end
    assert (network, None) not in at(m3)

    assert list(at(m2, selectors=[{"product_id": storage}])) == [(storage, "us"), (storage, "eu")]
    assert list(at(m2, selectors=[{"pricing_group_values": {"region": "eu"}}])) == [(storage, "eu")]
    assert at(m0 - timedelta(hours=1)) == {}  # before the contract: no rates

    # Without `at`: now, in the current month (m1).
    now = _contract_schedule(client, customer_id=customer, contract_id=contract)
    assert {r["product_id"] for r in now} == {compute, storage, network}

    first = client.v1.contracts.retrieve_rate_schedule(
        customer_id=customer, contract_id=contract, at=m1, limit=2
    )
    assert len(first.data) == 2 and first.next_page is not None
    second = client.v1.contracts.retrieve_rate_schedule(
        customer_id=customer, contract_id=contract, at=m1, limit=2, next_page=first.next_page
    )
    assert len(second.data) == 2 and second.next_page is None
    assert {(r.product_id, r.starting_at) for r in first.data + second.data} == {
        (r["product_id"], datetime.fromisoformat(r["starting_at"])) for r in at(m1).values()
    }


def test_schedule_errors_name_the_field(client: Metronome, server: RunningServer) -> None:
    m0, m1, _m2, _m3 = _times()
    card = rate_card(client)
    customer = client.v1.customers.create(name=f"customer {uid()}").data.id
    contract = client.v1.contracts.create(customer_id=customer, rate_card_id=card, starting_at=m0).data.id
    assert "rate_card_id" in error_of(
        lambda: client.v1.contracts.rate_cards.retrieve_rate_schedule(
            rate_card_id=MISSING_ID, starting_at=m0
        ),
        404,
    )
    assert "ending_before" in error_of(
        lambda: client.v1.contracts.rate_cards.retrieve_rate_schedule(
            rate_card_id=card, starting_at=m1, ending_before=m0
        ),
        400,
    )
    assert "contract_id" in error_of(
        lambda: client.v1.contracts.retrieve_rate_schedule(customer_id=customer, contract_id=MISSING_ID), 404
    )
    url = f"{server.base_url}/v1/contract-pricing/rate-cards/getRateSchedule"
    missing = httpx.post(url, json={"rate_card_id": card}, headers=server.headers())
    assert missing.status_code == 400 and "starting_at" in missing.json()["message"]
    forged = httpx.post(
        url,
        params={"next_page": "Imlk"},
        json={"rate_card_id": card, "starting_at": rfc3339(m0)},
        headers=server.headers(),
    )
    assert forged.status_code == 400 and "next_page" in forged.json()["message"]
    bad_selector = httpx.post(
        f"{server.base_url}/v1/contracts/getContractRateSchedule",
        json={"customer_id": customer, "contract_id": contract, "selectors": [{"product": "x"}]},
        headers=server.headers(),
    )
    assert bad_selector.status_code == 400 and "selectors.0.product" in bad_selector.json()["message"]
