"""Rate cards and their rates through the Metronome SDK: round-trips, updates, aliases, archive and
list, addRate/addRates/getRates over time, exact tier prices on the wire, validation errors, and
the rates the billing engine reads.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import metronome
import pytest
from metronome import Metronome

from meterline.domain.pricing import PriceSpec, Tier
from meterline.domain.timeutil import to_us
from meterline.store import rates as rate_store
from meterline.store.db import Database
from tests.support.server import RunningServer

USD_CENTS = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"
MISSING_ID = "00000000-0000-4000-8000-0000000000dd"
JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)
MAR = datetime(2024, 3, 1, tzinfo=UTC)
APR = datetime(2024, 4, 1, tzinfo=UTC)
MAY = datetime(2024, 5, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


@pytest.fixture
def client(server: RunningServer) -> Metronome:
    return Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)


def uid() -> str:
    return uuid.uuid4().hex[:12]


def error_of(call: Any, status: int) -> str:
    """Run an SDK call expected to fail with `status`; return the server's message."""
    with pytest.raises(metronome.APIStatusError) as raised:
        call()
    assert raised.value.status_code == status, raised.value.response.text
    message: str = raised.value.response.json()["message"]
    return message


def new_unit(client: Metronome) -> str:
    return client.v1.pricing_units.create(name=f"credits {uid()}").data.id


def new_card(client: Metronome, **fields: Any) -> str:
    fields.setdefault("name", f"rate card {uid()}")
    return client.v1.contracts.rate_cards.create(**fields).data.id


def new_usage_product(client: Metronome, pricing_group_key: list[str] | None = None, **fields: Any) -> str:
    metric_id = client.v1.billable_metrics.create(
        name=f"calls {uid()}",
        aggregation_type="COUNT",
        event_type_filter={"in_values": [f"call_{uid()}"]},
        group_keys=[["region", "tier"]],
    ).data.id
    return client.v1.contracts.products.create(
        name=f"calls {uid()}",
        type="USAGE",
        billable_metric_id=metric_id,
        pricing_group_key=pricing_group_key or [],
        **fields,
    ).data.id


def flat(product_id: str, price: float, starting_at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "product_id": product_id,
        "entitled": True,
        "rate_type": "FLAT",
        "price": price,
        "starting_at": starting_at,
        **fields,
    }


def rates_at(client: Metronome, rate_card_id: str, at: datetime, **params: Any) -> list[Any]:
    return list(client.v1.contracts.rate_cards.rates.list(rate_card_id=rate_card_id, at=at, **params))


def prices_at(client: Metronome, rate_card_id: str, at: datetime) -> list[float | None]:
    return [r.rate.price for r in rates_at(client, rate_card_id, at)]


def all_card_ids(client: Metronome) -> list[str]:
    return [c.id for c in client.v1.contracts.rate_cards.list(limit=100)]


# Rate cards


def test_rate_card_round_trips_every_field(client: Metronome) -> None:
    unit = new_unit(client)
    alias = f"standard-{uid()}"
    name = f"Standard {uid()}"
    rate_card_id = client.v1.contracts.rate_cards.create(
        name=name,
        description="list prices",
        fiat_credit_type_id=USD_CENTS,
        credit_type_conversions=[{"custom_credit_type_id": unit, "fiat_per_custom_credit": 2.5}],
        aliases=[{"name": alias, "starting_at": JAN, "ending_before": MAR}],
        custom_fields={"team": "growth"},
    ).data.id

    got = client.v1.contracts.rate_cards.retrieve(id=rate_card_id).data
    assert got.id == rate_card_id
    assert got.name == name
    assert got.description == "list prices"
    assert got.created_by
    assert abs(got.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert got.fiat_credit_type is not None
    assert got.fiat_credit_type.to_dict() == {"id": USD_CENTS, "name": "USD (cents)"}
    assert got.credit_type_conversions is not None
    [conversion] = got.credit_type_conversions
    assert conversion.custom_credit_type.id == unit
    assert conversion.custom_credit_type.name.startswith("credits ")
    assert conversion.fiat_per_custom_credit == "2.5"
    assert got.aliases is not None
    assert [a.to_dict() for a in got.aliases] == [{"name": alias, "starting_at": JAN, "ending_before": MAR}]
    assert got.custom_fields == {"team": "growth"}
    listed = {c.id: c for c in client.v1.contracts.rate_cards.list(limit=100)}
    assert listed[rate_card_id].to_dict() == got.to_dict()


def test_fiat_credit_type_defaults_to_usd_cents(client: Metronome) -> None:
    got = client.v1.contracts.rate_cards.retrieve(id=new_card(client)).data
    assert got.fiat_credit_type is not None
    assert got.fiat_credit_type.id == USD_CENTS
    assert got.credit_type_conversions == []
    assert got.aliases == []
    assert got.description is None


def test_update_changes_metadata_aliases_and_adds_conversions(client: Metronome) -> None:
    first_unit, second_unit = new_unit(client), new_unit(client)
    rate_card_id = new_card(
        client,
        aliases=[{"name": f"old-{uid()}"}],
        credit_type_conversions=[{"custom_credit_type_id": first_unit, "fiat_per_custom_credit": 3}],
    )
    new_alias = f"new-{uid()}"
    client.v1.contracts.rate_cards.update(
        rate_card_id=rate_card_id,
        name="renamed",
        description="now described",
        aliases=[{"name": new_alias, "starting_at": FEB}],
        add_credit_type_conversions=[{"custom_credit_type_id": second_unit, "fiat_per_custom_credit": 0.25}],
    )

    got = client.v1.contracts.rate_cards.retrieve(id=rate_card_id).data
    assert got.name == "renamed"
    assert got.description == "now described"
    assert got.aliases is not None
    assert [a.to_dict() for a in got.aliases] == [{"name": new_alias, "starting_at": FEB}]
    assert got.credit_type_conversions is not None
    assert [(c.custom_credit_type.id, c.fiat_per_custom_credit) for c in got.credit_type_conversions] == [
        (first_unit, "3"),
        (second_unit, "0.25"),
    ]

    message = error_of(
        lambda: client.v1.contracts.rate_cards.update(
            rate_card_id=rate_card_id,
            add_credit_type_conversions=[{"custom_credit_type_id": first_unit, "fiat_per_custom_credit": 9}],
        ),
        400,
    )
    assert "add_credit_type_conversions.0.custom_credit_type_id" in message
    assert "cannot be changed" in message


def test_archive_hides_from_list_and_refuses_changes(client: Metronome) -> None:
    kept, archived = new_card(client), new_card(client)
    client.v1.contracts.rate_cards.archive(id=archived)
    client.v1.contracts.rate_cards.archive(id=archived)  # archiving twice is harmless

    listed = all_card_ids(client)
    assert kept in listed and archived not in listed
    assert client.v1.contracts.rate_cards.retrieve(id=archived).data.id == archived
    assert "archived" in error_of(
        lambda: client.v1.contracts.rate_cards.update(rate_card_id=archived, name="x"), 400
    )
    assert "archived" in error_of(
        lambda: client.v1.contracts.rate_cards.rates.add(
            rate_card_id=archived, **flat(new_usage_product(client), 1, JAN)
        ),
        400,
    )
    assert MISSING_ID in error_of(lambda: client.v1.contracts.rate_cards.archive(id=MISSING_ID), 404)
    assert MISSING_ID in error_of(lambda: client.v1.contracts.rate_cards.retrieve(id=MISSING_ID), 404)


def test_list_paginates_with_small_limit(client: Metronome) -> None:
    mine = {new_card(client) for _ in range(3)}
    page = client.v1.contracts.rate_cards.list(limit=2)
    assert len(page.data) == 2 and page.next_page is not None
    seen: list[str] = []
    while True:
        assert len(page.data) <= 2
        seen.extend(c.id for c in page.data)
        if not page.has_next_page():
            break
        page = page.get_next_page()
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    assert mine <= set(seen)


def test_rate_card_validation(client: Metronome, server: RunningServer) -> None:
    create = client.v1.contracts.rate_cards.create
    unit = new_unit(client)

    assert "fiat_credit_type_id" in error_of(lambda: create(name="x", fiat_credit_type_id=MISSING_ID), 400)
    message = error_of(lambda: create(name="x", fiat_credit_type_id=unit), 400)
    assert "fiat_credit_type_id" in message and "not a fiat currency" in message
    message = error_of(
        lambda: create(
            name="x",
            credit_type_conversions=[{"custom_credit_type_id": MISSING_ID, "fiat_per_custom_credit": 1}],
        ),
        400,
    )
    assert "credit_type_conversions.0.custom_credit_type_id" in message
    message = error_of(
        lambda: create(
            name="x",
            credit_type_conversions=[{"custom_credit_type_id": USD_CENTS, "fiat_per_custom_credit": 1}],
        ),
        400,
    )
    assert "credit_type_conversions.0.custom_credit_type_id" in message and "currency" in message
    for factor in (0, -1):
        message = error_of(
            lambda factor=factor: create(
                name="x",
                credit_type_conversions=[{"custom_credit_type_id": unit, "fiat_per_custom_credit": factor}],
            ),
            400,
        )
        assert "fiat_per_custom_credit" in message
    message = error_of(
        lambda: create(name="x", aliases=[{"name": f"a-{uid()}", "starting_at": MAR, "ending_before": FEB}]),
        400,
    )
    assert "aliases.0.ending_before" in message
    assert "name" in error_of(lambda: create(name=""), 400)
    unknown = httpx.post(
        f"{server.base_url}/v1/contract-pricing/rate-cards/create",
        json={"name": "x", "currency": "EUR"},
        headers=server.headers(),
    )
    assert unknown.status_code == 400 and "currency" in unknown.json()["message"]
    assert "x" not in {c.name for c in client.v1.contracts.rate_cards.list(limit=100)}


def test_alias_held_by_another_active_card_at_overlapping_time_conflicts(client: Metronome) -> None:
    alias = f"paygo-{uid()}"
    holder = new_card(client, aliases=[{"name": alias, "starting_at": JAN, "ending_before": MAR}])

    for window in (
        {},
        {"starting_at": FEB},
        {"ending_before": FEB},
        {"starting_at": FEB, "ending_before": APR},
    ):
        message = error_of(lambda window=window: new_card(client, aliases=[{"name": alias, **window}]), 409)
        assert alias in message and holder in message
    later = new_card(client, aliases=[{"name": alias, "starting_at": MAR}])  # touching, not overlapping
    assert "aliases" in error_of(
        lambda: client.v1.contracts.rate_cards.update(
            rate_card_id=holder, aliases=[{"name": alias, "starting_at": JAN, "ending_before": APR}]
        ),
        409,
    )
    # Archiving a card releases its aliases.
    client.v1.contracts.rate_cards.archive(id=later)
    new_card(client, aliases=[{"name": alias, "starting_at": APR}])
    message = error_of(
        lambda: new_card(
            client, aliases=[{"name": alias, "ending_before": FEB}, {"name": alias, "starting_at": JAN}]
        ),
        400,
    )
    assert "aliases.1" in message


# Rates


def test_add_flat_rate_round_trips(client: Metronome) -> None:
    product_id = new_usage_product(client, ["region"], tags=["api"], custom_fields={"sku": "calls"})
    product_name = client.v1.contracts.products.retrieve(id=product_id).data.current.name
    rate_card_id = new_card(client)

    added = client.v1.contracts.rate_cards.rates.add(
        rate_card_id=rate_card_id,
        product_id=product_id,
        entitled=False,
        rate_type="FLAT",
        price=12.5,
        starting_at=JAN,
        ending_before=MAR,
        pricing_group_values={"region": "eu"},
    ).data
    assert added.rate_type == "FLAT"
    assert added.price == 12.5
    assert added.tiers is None
    assert added.credit_type is not None
    assert added.credit_type.to_dict() == {"id": USD_CENTS, "name": "USD (cents)"}
    assert added.pricing_group_values == {"region": "eu"}

    [rate] = rates_at(client, rate_card_id, FEB)
    assert rate.product_id == product_id
    assert rate.product_name == product_name
    assert rate.product_tags == ["api"]
    assert rate.product_custom_fields == {"sku": "calls"}
    assert rate.entitled is False
    assert rate.starting_at == JAN
    assert rate.ending_before == MAR
    assert rate.pricing_group_values == {"region": "eu"}
    assert rate.rate.to_dict() == added.to_dict()


def test_get_rates_respects_starting_at_inclusive_and_ending_before_exclusive(client: Metronome) -> None:
    product_id = new_usage_product(client)
    rate_card_id = new_card(client)
    client.v1.contracts.rate_cards.rates.add(
        rate_card_id=rate_card_id, **flat(product_id, 7, FEB, ending_before=MAR)
    )

    assert prices_at(client, rate_card_id, FEB - US) == []
    assert prices_at(client, rate_card_id, FEB) == [7]
    assert prices_at(client, rate_card_id, MAR - US) == [7]
    assert prices_at(client, rate_card_id, MAR) == []


def test_newer_rate_takes_over_from_its_starting_at(client: Metronome) -> None:
    product_id = new_usage_product(client)
    rate_card_id = new_card(client)
    client.v1.contracts.rate_cards.rates.add(rate_card_id=rate_card_id, **flat(product_id, 10, JAN))
    client.v1.contracts.rate_cards.rates.add(rate_card_id=rate_card_id, **flat(product_id, 20, MAR))

    [before] = rates_at(client, rate_card_id, FEB)
    assert (before.rate.price, before.starting_at, before.ending_before) == (10, JAN, MAR)
    [after] = rates_at(client, rate_card_id, MAR)
    assert (after.rate.price, after.starting_at, after.ending_before) == (20, MAR, None)


def test_older_price_resumes_after_a_bounded_newer_rate(client: Metronome) -> None:
    product_id = new_usage_product(client)
    rate_card_id = new_card(client)
    client.v1.contracts.rate_cards.rates.add_many(
        rate_card_id=rate_card_id,
        rates=[flat(product_id, 10, JAN), flat(product_id, 5, FEB, ending_before=MAR)],  # a promotion
    )

    assert prices_at(client, rate_card_id, JAN) == [10]
    assert prices_at(client, rate_card_id, FEB) == [5]
    [resumed] = rates_at(client, rate_card_id, MAR)
    assert (resumed.rate.price, resumed.starting_at, resumed.ending_before) == (10, MAR, None)


def test_newer_rate_covering_an_older_one_replaces_it(client: Metronome) -> None:
    product_id = new_usage_product(client)
    rate_card_id = new_card(client)
    add = client.v1.contracts.rate_cards.rates.add
    add(rate_card_id=rate_card_id, **flat(product_id, 10, FEB, ending_before=MAR))
    add(rate_card_id=rate_card_id, **flat(product_id, 30, JAN, ending_before=APR))

    for moment in (JAN, FEB, MAR):
        [rate] = rates_at(client, rate_card_id, moment)
        assert (rate.rate.price, rate.starting_at, rate.ending_before) == (30, JAN, APR)
    assert prices_at(client, rate_card_id, APR) == []


def test_rates_for_other_pricing_group_values_are_independent(client: Metronome) -> None:
    product_id = new_usage_product(client, ["region"])
    rate_card_id = new_card(client)
    client.v1.contracts.rate_cards.rates.add_many(
        rate_card_id=rate_card_id,
        rates=[
            flat(product_id, 1, JAN, pricing_group_values={"region": "us"}),
            flat(product_id, 2, FEB, pricing_group_values={"region": "eu"}),
        ],
    )
    at_feb = {r.pricing_group_values["region"]: r for r in rates_at(client, rate_card_id, FEB)}
    assert at_feb["us"].rate.price == 1 and at_feb["us"].ending_before is None
    assert at_feb["eu"].rate.price == 2


def test_tiered_rate_round_trips_exactly(client: Metronome, server: RunningServer) -> None:
    product_id = new_usage_product(client)
    rate_card_id = new_card(client)
    tiers = [{"price": 0.0015, "size": 1000}, {"price": 0.00125, "size": 9000.5}, {"price": 0}]
    added = client.v1.contracts.rate_cards.rates.add(
        rate_card_id=rate_card_id,
        product_id=product_id,
        entitled=True,
        rate_type="TIERED",
        starting_at=JAN,
        tiers=tiers,
    ).data
    assert added.rate_type == "TIERED"
    assert added.price is None
    assert added.tiers is not None
    assert [t.to_dict() for t in added.tiers] == tiers

    # A raw JSON body with a price no float can hold, checked on the response text.
    body = json.dumps(
        {
            "rate_card_id": rate_card_id,
            "product_id": product_id,
            "entitled": True,
            "rate_type": "TIERED",
            "starting_at": "2024-03-01T00:00:00Z",
            "tiers": [{"price": "P1", "size": 1000}, {"price": "P2"}],
        }
    )
    body = body.replace('"P1"', "0.0015").replace('"P2"', "0.10000000000000000001")
    response = httpx.post(
        f"{server.base_url}/v1/contract-pricing/rate-cards/addRate", content=body, headers=server.headers()
    )
    assert response.status_code == 200, response.text
    assert '"tiers":[{"price":0.0015,"size":1000},{"price":0.10000000000000000001}]' in response.text
    fetched = httpx.post(
        f"{server.base_url}/v1/contract-pricing/rate-cards/getRates",
        json={"rate_card_id": rate_card_id, "at": "2024-03-01T00:00:00Z"},
        headers=server.headers(),
    )
    assert '"tiers":[{"price":0.0015,"size":1000},{"price":0.10000000000000000001}]' in fetched.text


def test_rates_in_custom_pricing_units_need_a_conversion(client: Metronome) -> None:
    converted, unconverted = new_unit(client), new_unit(client)
    product_id = new_usage_product(client)
    rate_card_id = new_card(
        client, credit_type_conversions=[{"custom_credit_type_id": converted, "fiat_per_custom_credit": 4}]
    )
    add = client.v1.contracts.rate_cards.rates.add

    added = add(rate_card_id=rate_card_id, **flat(product_id, 3, JAN, credit_type_id=converted)).data
    assert added.credit_type is not None and added.credit_type.id == converted
    message = error_of(
        lambda: add(rate_card_id=rate_card_id, **flat(product_id, 3, JAN, credit_type_id=unconverted)), 400
    )
    assert "credit_type_id" in message and "conversion" in message
    message = error_of(
        lambda: add(rate_card_id=rate_card_id, **flat(product_id, 3, JAN, credit_type_id=MISSING_ID)), 400
    )
    assert "credit_type_id" in message
    [rate] = rates_at(client, rate_card_id, JAN)
    assert rate.rate.credit_type is not None and rate.rate.credit_type.id == converted


def test_get_rates_selectors_and_pagination(client: Metronome) -> None:
    tagged = new_usage_product(client, ["region"], tags=["gpu", "compute"])
    plain = new_usage_product(client)
    rate_card_id = new_card(client)
    client.v1.contracts.rate_cards.rates.add_many(
        rate_card_id=rate_card_id,
        rates=[
            flat(tagged, 1, JAN, pricing_group_values={"region": "us"}),
            flat(tagged, 2, JAN, pricing_group_values={"region": "eu"}),
            flat(plain, 3, JAN),
        ],
    )

    def prices(**params: Any) -> list[float | None]:
        return sorted(r.rate.price or 0 for r in rates_at(client, rate_card_id, FEB, **params))

    assert prices() == [1, 2, 3]
    assert prices(selectors=[{"product_id": plain}]) == [3]
    assert prices(selectors=[{"product_tags": ["compute", "other"]}]) == [1, 2]
    assert prices(selectors=[{"pricing_group_values": {"region": "eu"}}]) == [2]
    assert prices(selectors=[{"partial_pricing_group_values": {"region": "us"}}]) == [1]
    assert prices(selectors=[{"product_id": tagged, "pricing_group_values": {"region": "us"}}]) == [1]
    assert prices(selectors=[{"product_id": plain}, {"pricing_group_values": {"region": "eu"}}]) == [2, 3]
    assert prices(selectors=[{"billing_frequency": "MONTHLY"}]) == []

    page = client.v1.contracts.rate_cards.rates.list(rate_card_id=rate_card_id, at=FEB, limit=1)
    seen = []
    while True:
        assert len(page.data) == 1
        seen.append(page.data[0].rate.price)
        if not page.has_next_page():
            break
        page = page.get_next_page()
    assert sorted(seen) == [1, 2, 3]


def test_add_rates_is_all_or_nothing_and_names_the_bad_rate(client: Metronome) -> None:
    product_id = new_usage_product(client)
    rate_card_id = new_card(client)
    message = error_of(
        lambda: client.v1.contracts.rate_cards.rates.add_many(
            rate_card_id=rate_card_id,
            rates=[flat(product_id, 1, JAN), {**flat(product_id, 1, FEB), "price": -1}],
        ),
        400,
    )
    assert "rates.1.price" in message
    message = error_of(
        lambda: client.v1.contracts.rate_cards.rates.add_many(
            rate_card_id=rate_card_id,
            rates=[flat(product_id, 1, JAN), flat(product_id, 2, FEB, ending_before=JAN)],
        ),
        400,
    )
    assert "rates.1.ending_before" in message
    assert rates_at(client, rate_card_id, MAY) == []
    assert "rates" in error_of(
        lambda: client.v1.contracts.rate_cards.rates.add_many(rate_card_id=rate_card_id, rates=[]), 400
    )


def test_rate_validation(client: Metronome) -> None:
    grouped = new_usage_product(client, ["region"])
    product_id = new_usage_product(client)
    archived = new_usage_product(client)
    client.v1.contracts.products.archive(product_id=archived)
    rate_card_id = new_card(client)
    add = client.v1.contracts.rate_cards.rates.add

    def refused(status: int = 400, **fields: Any) -> str:
        rate = {"rate_card_id": rate_card_id, **flat(product_id, 1, JAN), **fields}
        return error_of(lambda: add(**{k: v for k, v in rate.items() if v is not None}), status)

    assert "price" in refused(price=None)
    assert "price" in refused(price=-0.01)
    assert "tiers" in refused(tiers=[{"price": 1}])
    assert "tiers" in refused(rate_type="TIERED", price=None)
    assert "tiers" in refused(rate_type="TIERED", price=None, tiers=[])
    assert "price" in refused(rate_type="TIERED", tiers=[{"price": 1}])
    assert "tiers.0.size" in refused(rate_type="TIERED", price=None, tiers=[{"price": 1}, {"price": 0.5}])
    assert "tiers.0.size" in refused(
        rate_type="TIERED", price=None, tiers=[{"price": 1, "size": 0}, {"price": 0}]
    )
    assert "tiers.1.price" in refused(
        rate_type="TIERED", price=None, tiers=[{"price": 1, "size": 5}, {"price": -1}]
    )
    for rate_type in ("PERCENTAGE", "SUBSCRIPTION", "TIERED_PERCENTAGE", "CUSTOM"):
        message = refused(rate_type=rate_type)
        assert "rate_type" in message and "not support" in message
    assert "billing_frequency" in refused(billing_frequency="MONTHLY")
    assert "commit_rate" in refused(commit_rate={"rate_type": "FLAT", "price": 1})
    assert "ending_before" in refused(ending_before=JAN)
    assert "ending_before" in refused(starting_at=FEB, ending_before=JAN)
    assert "starting_at" in refused(starting_at=JAN + timedelta(minutes=15))
    assert "ending_before" in refused(ending_before=FEB + timedelta(seconds=1))
    assert "product_id" in refused(product_id=MISSING_ID)
    assert "archived" in refused(product_id=archived)
    message = refused(product_id=grouped)
    assert "pricing_group_values" in message and "region" in message
    assert "pricing_group_values" in refused(product_id=grouped, pricing_group_values={"tier": "gold"})
    assert "pricing_group_values" in refused(pricing_group_values={"region": "eu"})
    assert "rate_card_id" in refused(404, rate_card_id=MISSING_ID)
    assert "entitled" in error_of(
        lambda: add(rate_card_id=rate_card_id, **{**flat(product_id, 1, JAN), "entitled": None}), 400
    )
    assert rates_at(client, rate_card_id, FEB) == []


def test_get_rates_validation(client: Metronome, server: RunningServer) -> None:
    rate_card_id = new_card(client)
    assert "rate_card_id" in error_of(lambda: rates_at(client, MISSING_ID, JAN), 404)
    url = f"{server.base_url}/v1/contract-pricing/rate-cards/getRates"
    missing_at = httpx.post(url, json={"rate_card_id": rate_card_id}, headers=server.headers())
    assert missing_at.status_code == 400 and "at" in missing_at.json()["message"]
    bad_at = httpx.post(url, json={"rate_card_id": rate_card_id, "at": "yesterday"}, headers=server.headers())
    assert bad_at.status_code == 400 and "at" in bad_at.json()["message"]
    bad_cursor = httpx.post(
        url,
        params={"next_page": "Imlk"},
        json={"rate_card_id": rate_card_id, "at": "2024-01-01T00:00:00Z"},
        headers=server.headers(),
    )
    assert bad_cursor.status_code == 400 and "next_page" in bad_cursor.json()["message"]


def test_rates_in_force_gives_the_billing_engine_exact_prices(client: Metronome, db: Database) -> None:
    unit = new_unit(client)
    product_id = new_usage_product(client, ["region"])
    rate_card_id = new_card(
        client, credit_type_conversions=[{"custom_credit_type_id": unit, "fiat_per_custom_credit": 2}]
    )
    client.v1.contracts.rate_cards.rates.add_many(
        rate_card_id=rate_card_id,
        rates=[
            flat(product_id, 0.0015, JAN, ending_before=MAR, pricing_group_values={"region": "us"}),
            {
                "product_id": product_id,
                "entitled": False,
                "rate_type": "TIERED",
                "starting_at": FEB,
                "tiers": [{"price": 0.5, "size": 100}, {"price": 0.25}],
                "credit_type_id": unit,
                "pricing_group_values": {"region": "eu"},
            },
        ],
    )

    with db.read() as conn:
        at_jan = rate_store.rates_in_force(conn, rate_card_id, to_us(JAN))
        at_feb = {
            r.pricing_group_values["region"]: r
            for r in rate_store.rates_in_force(conn, rate_card_id, to_us(FEB))
        }
        at_mar = rate_store.rates_in_force(conn, rate_card_id, to_us(MAR))
    [us] = at_jan
    assert us.product_id == product_id
    assert us.entitled is True
    assert us.credit_type_id == USD_CENTS
    assert us.price == PriceSpec(price=Decimal("0.0015"))
    assert (us.starting_at_us, us.ending_before_us) == (to_us(JAN), to_us(MAR))
    assert set(at_feb) == {"us", "eu"}
    eu = at_feb["eu"]
    assert eu.entitled is False
    assert eu.credit_type_id == unit
    assert eu.price == PriceSpec(tiers=(Tier(Decimal("0.5"), Decimal(100)), Tier(Decimal("0.25"), None)))
    assert eu.ending_before_us is None
    assert [r.pricing_group_values for r in at_mar] == [{"region": "eu"}]
