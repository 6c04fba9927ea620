"""Threshold billing through the Metronome SDK against a real server: the configurations as
contracts show them back, an auto-recharge as usage arrives, and what is refused (naming the
field): payment gates that need a payment provider, and terms that could never hold.

Usage is a SUM of `qty` priced 1 cent a unit; amounts are worked out next to each check.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from metronome import Metronome

from tests.sdk.alert_helpers import contract, customer, fixed_product, rate_card, segment, usage_product, use
from tests.sdk.billing_helpers import exact, net_balance
from tests.sdk.contract_helpers import MISSING_ID, error_of
from tests.sdk.helpers import settle
from tests.support.waiting import wait_for

D = Decimal


def starting_balance(client: Metronome, amount: float) -> dict[str, Any]:
    """A free PREPAID commit of `amount` on the contract, in force throughout: what usage draws
    down before a recharge."""
    return {
        "type": "PREPAID",
        "product_id": fixed_product(client),
        "priority": 1,
        "access_schedule": segment(amount),
    }


def prepaid(product_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "commit": {"product_id": product_id},
        "is_enabled": True,
        "payment_gate_config": {"payment_gate_type": "NONE"},
        "threshold_amount": 200,
        "recharge_to_amount": 1000,
        **fields,
    }


def spend(product_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "commit": {"product_id": product_id, "name": "usage so far"},
        "is_enabled": True,
        "payment_gate_config": {"payment_gate_type": "NONE", "tax_type": "NONE"},
        "threshold_amount": 5000,
        **fields,
    }


def test_an_auto_recharge_as_usage_arrives_and_both_configurations_shown_back(client: Metronome) -> None:
    usage, recharge, paid = usage_product(client), fixed_product(client), fixed_product(client)
    customer_id = customer(client)
    contract_id = contract(
        client,
        customer_id,
        rate_card(client, (usage.product_id, 1)),
        commits=[starting_balance(client, 1000)],
        prepaid_balance_threshold_configuration=prepaid(recharge),
        spend_threshold_configuration=spend(paid),
    )
    shown = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current
    assert shown.prepaid_balance_threshold_configuration is not None
    assert shown.prepaid_balance_threshold_configuration.commit.product_id == recharge
    assert shown.prepaid_balance_threshold_configuration.payment_gate_config.payment_gate_type == "NONE"
    assert shown.spend_threshold_configuration is not None
    assert shown.spend_threshold_configuration.commit.name == "usage so far"
    assert shown.spend_threshold_configuration.threshold_amount == 5000

    def bought() -> list[Any]:
        raw = client.v1.contracts.with_raw_response.retrieve(customer_id=customer_id, contract_id=contract_id)
        return [c for c in exact(raw)["data"]["current"]["commits"] if c["product"]["id"] == recharge]

    use(client, customer_id, usage, 900)  # 1000 - 900 = 100 left: recharged by 900 to 1000
    [commit] = wait_for(bought, lambda found: len(found) > 0)
    assert commit["access_schedule"]["schedule_items"][0]["amount"] == 900
    assert commit["invoice_schedule"]["schedule_items"][0]["amount"] == 900
    assert net_balance(client, customer_id) == 1000
    assert len(settled(client, bought)) == 1  # bought once


def settled(client: Metronome, read: Any) -> Any:
    settle(client)
    return read()


def test_payment_gates_that_need_a_provider_and_impossible_terms_are_refused(client: Metronome) -> None:
    fixed, customer_id = fixed_product(client), customer(client)
    card = rate_card(client)

    def refused(**fields: Any) -> str:
        return error_of(lambda: contract(client, customer_id, card, **fields), 400)

    stripe = {"payment_gate_type": "STRIPE", "stripe_config": {"payment_type": "INVOICE"}}
    message = refused(spend_threshold_configuration=spend(fixed, payment_gate_config=stripe))
    assert "spend_threshold_configuration.payment_gate_config.payment_gate_type" in message
    assert "payment provider" in message
    external = {"payment_gate_type": "EXTERNAL"}
    assert "prepaid_balance_threshold_configuration.payment_gate_config.payment_gate_type" in refused(
        prepaid_balance_threshold_configuration=prepaid(fixed, payment_gate_config=external)
    )
    assert (
        "prepaid_balance_threshold_configuration.recharge_to_amount: must be greater than threshold_amount"
        in (refused(prepaid_balance_threshold_configuration=prepaid(fixed, recharge_to_amount=200)))
    )
    assert "prepaid_balance_threshold_configuration.commit.product_id" in refused(
        prepaid_balance_threshold_configuration=prepaid(MISSING_ID)
    )
    assert "spend_threshold_configuration.discount_configuration" in refused(
        spend_threshold_configuration=spend(fixed, discount_configuration={"payment_fraction": 0.9})
    )
    assert "prepaid_balance_threshold_configuration.custom_credit_type_id" in refused(
        prepaid_balance_threshold_configuration=prepaid(fixed, custom_credit_type_id=MISSING_ID)
    )
    assert client.v1.contracts.list(customer_id=customer_id).data == []  # nothing was written
