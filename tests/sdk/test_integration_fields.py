"""What integrations send that changes no amount, through the Metronome SDK: accepted, stored, and
shown back where Metronome's response models have them; malformed values refused by field."""

from __future__ import annotations

from typing import Any

import pytest
from metronome import Metronome
from sqlalchemy import select

from meterline.store.db import Database
from meterline.store.tables import contracts, customers
from tests.sdk.contract_helpers import JAN, error_of, new_card
from tests.sdk.helpers import uid


def test_contract_integration_fields_are_stored_and_shown_back(client: Metronome, db: Database) -> None:
    customer_id, card = client.v1.customers.create(name=f"crm {uid()}").data.id, new_card(client)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=JAN,
        name="Enterprise 2024",
        net_payment_terms_days=45,
        salesforce_opportunity_id="006Dn00000A1b2C",
        total_contract_value=1234567.89,
        billing_provider_configuration={
            "billing_provider": "stripe",
            "delivery_method": "direct_to_billing_provider",
        },
    ).data.id

    got = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    listed = client.v1.contracts.list(customer_id=customer_id).data[0]
    for terms in (got.initial, got.current, listed.current):
        assert terms.name == "Enterprise 2024"
        assert terms.net_payment_terms_days == 45
        assert terms.salesforce_opportunity_id == "006Dn00000A1b2C"
        assert terms.total_contract_value == 1234567.89
    raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    assert '"total_contract_value":1234567.89' in raw.http_response.text  # exact, not through a float

    with db.read() as conn:
        stored = conn.execute(
            select(contracts.c.integration_fields).where(contracts.c.id == contract_id)
        ).scalar()
    assert stored["billing_provider_configuration"] == {
        "billing_provider": "stripe",
        "delivery_method": "direct_to_billing_provider",
    }


def test_a_contract_without_them_shows_none(client: Metronome) -> None:
    customer_id, card = client.v1.customers.create(name=f"plain {uid()}").data.id, new_card(client)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id, rate_card_id=card, starting_at=JAN
    ).data.id
    terms = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current
    assert (terms.net_payment_terms_days, terms.salesforce_opportunity_id, terms.total_contract_value) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"net_payment_terms_days": -1},
            "net_payment_terms_days: input should be greater than or equal to 0",
        ),
        ({"total_contract_value": -5}, "total_contract_value: input should be greater than or equal to 0"),
        (
            {"salesforce_opportunity_id": ""},
            "salesforce_opportunity_id: string should have at least 1 character",
        ),
        (
            {"billing_provider_configuration": {"billing_provider": "stripe"}},
            "billing_provider_configuration: give billing_provider_configuration_id, or both billing_provider "
            "and delivery_method",
        ),
        (
            {
                "billing_provider_configuration": {
                    "billing_provider_configuration_id": "bpc-1",
                    "billing_provider": "stripe",
                    "delivery_method": "direct_to_billing_provider",
                }
            },
            "billing_provider_configuration: give billing_provider_configuration_id, or billing_provider with "
            "delivery_method, not both",
        ),
    ],
)
def test_malformed_contract_integration_fields_are_refused(
    client: Metronome, fields: dict[str, Any], message: str
) -> None:
    customer_id, card = client.v1.customers.create(name=f"bad {uid()}").data.id, new_card(client)
    got = error_of(
        lambda: client.v1.contracts.create(
            customer_id=customer_id, rate_card_id=card, starting_at=JAN, **fields
        ),
        400,
    )
    assert got == message
    assert client.v1.contracts.list(customer_id=customer_id).data == []


def test_a_customer_billing_config_is_accepted_and_stored(client: Metronome, db: Database) -> None:
    config = {
        "billing_provider_type": "stripe",
        "billing_provider_customer_id": "cus_123",
        "stripe_collection_method": "send_invoice",
    }
    customer_id = client.v1.customers.create(name=f"stripe {uid()}", billing_config=config).data.id  # type: ignore[arg-type]
    with db.read() as conn:
        stored = conn.execute(
            select(customers.c.billing_config).where(customers.c.id == customer_id)
        ).scalar()
    assert stored == config
    # No customer response model of Metronome's carries it.
    assert client.v1.customers.retrieve(customer_id=customer_id).data.name.startswith("stripe")


def test_a_malformed_billing_config_is_refused_naming_the_field(client: Metronome) -> None:
    message = error_of(
        lambda: client.v1.customers.create(
            name="bad",
            billing_config={"billing_provider_type": "paypal", "billing_provider_customer_id": "x"},  # type: ignore[typeddict-item]
        ),
        400,
    )
    assert message.startswith("billing_config.billing_provider_type: input should be 'aws_marketplace'")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_billing_provider_configurations", [{"billing_provider": "stripe"}]),
        ("customer_revenue_system_configurations", [{"provider": "netsuite"}]),
    ],
)
def test_billing_provider_configurations_of_a_customer_are_not_supported_yet(
    client: Metronome, field: str, value: Any
) -> None:
    message = error_of(lambda: client.v1.customers.create(name="bp", **{field: value}), 400)
    assert message == f"{field}: meterline does not support this field yet"


def test_total_contract_value_keeps_every_digit(client: Metronome) -> None:
    customer_id, card = client.v1.customers.create(name=f"exact {uid()}").data.id, new_card(client)
    value = "12345678901234567.123456789"  # more digits than a float holds
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=JAN,
        extra_body={"total_contract_value": value},
    ).data.id
    raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
    assert f'"total_contract_value":{value}' in raw.http_response.text
