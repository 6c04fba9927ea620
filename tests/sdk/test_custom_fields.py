"""The custom fields API through the Metronome SDK: keys per entity type (add, list, remove), values
on one entity (set, delete) read back where Metronome's responses show them, keys that enforce
unique values, and entities meterline does not have refused by name."""

from __future__ import annotations

from typing import Any

import pytest
from metronome import Metronome

from tests.sdk.alert_helpers import add_credit, create_alert, customer, wait_status
from tests.sdk.contract_helpers import (
    FAR,
    JAN,
    access,
    error_of,
    new_card,
    new_fixed_product,
    new_usage_product,
)
from tests.sdk.helpers import uid


def keys_named(client: Metronome, names: set[str], **params: Any) -> list[tuple[str, str, bool]]:
    """(entity, key, enforce_uniqueness) of the listed keys among `names` (other tests add theirs)."""
    return [
        (k.entity, k.key, k.enforce_uniqueness)
        for k in client.v1.custom_fields.list_keys(**params)
        if k.key in names
    ]


def test_keys_are_added_listed_by_entity_and_removed(client: Metronome) -> None:
    sf, po = f"salesforce_id_{uid()}", f"po_{uid()}"
    client.v1.custom_fields.add_key(entity="customer", key=sf, enforce_uniqueness=True)
    client.v1.custom_fields.add_key(entity="contract", key=po, enforce_uniqueness=False)
    client.v1.custom_fields.add_key(entity="contract", key=sf, enforce_uniqueness=False)

    assert keys_named(client, {sf, po}) == [
        ("contract", po, False),
        ("contract", sf, False),
        ("customer", sf, True),
    ]
    assert keys_named(client, {sf, po}, entities=["customer"]) == [("customer", sf, True)]
    assert keys_named(client, {sf, po}, entities=["plan"]) == []

    # Adding again changes whether the key enforces uniqueness.
    client.v1.custom_fields.add_key(entity="contract", key=po, enforce_uniqueness=True)
    client.v1.custom_fields.remove_key(entity="contract", key=sf)
    assert keys_named(client, {sf, po}) == [("contract", po, True), ("customer", sf, True)]
    message = error_of(lambda: client.v1.custom_fields.remove_key(entity="contract", key=sf), 404)
    assert message == f"key: no custom field key {sf!r} on entity contract"


def test_list_keys_pages_with_next_page(client: Metronome) -> None:
    prefix = f"paged_{uid()}_"
    for i in range(105):
        client.v1.custom_fields.add_key(entity="rate_card", key=f"{prefix}{i:03}", enforce_uniqueness=False)
    first = client.v1.custom_fields.list_keys(entities=["rate_card"])
    assert len(first.data) == 100 and first.next_page
    ours = [
        k.key for k in client.v1.custom_fields.list_keys(entities=["rate_card"]) if k.key.startswith(prefix)
    ]
    assert ours == [f"{prefix}{i:03}" for i in range(105)]


def test_set_values_merges_and_delete_values_removes_on_a_customer(client: Metronome) -> None:
    customer_id = client.v1.customers.create(
        name=f"cf {uid()}", custom_fields={"tier": "gold", "region": "eu"}
    ).data.id
    client.v1.custom_fields.set_values(
        entity="customer", entity_id=customer_id, custom_fields={"tier": "platinum", "crm": "A-1"}
    )
    got = client.v1.customers.retrieve(customer_id=customer_id).data.custom_fields
    assert got == {"tier": "platinum", "region": "eu", "crm": "A-1"}

    client.v1.custom_fields.delete_values(entity="customer", entity_id=customer_id, keys=["region", "absent"])
    assert client.v1.customers.retrieve(customer_id=customer_id).data.custom_fields == {
        "tier": "platinum",
        "crm": "A-1",
    }


def test_values_are_shown_on_every_entity_that_has_them(client: Metronome) -> None:
    customer_id = client.v1.customers.create(name=f"cf {uid()}").data.id
    fixed, usage, card = new_fixed_product(client), new_usage_product(client), new_card(client)
    metric_id = client.v1.billable_metrics.create(
        name=f"m {uid()}", aggregation_type="COUNT", event_type_filter={"in_values": [f"e{uid()}"]}
    ).data.id
    contract_id = client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=JAN,
        commits=[
            {"type": "PREPAID", "product_id": fixed, "priority": 1, "access_schedule": access(10, JAN, FAR)}
        ],
        credits=[{"product_id": fixed, "priority": 1, "access_schedule": access(5, JAN, FAR)}],
    ).data.id
    terms = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data.current
    commit_id, credit_id = terms.commits[0].id, terms.credits[0].id  # type: ignore[index]
    customer_credit = add_credit(client, customer_id, 3)
    alert_id = create_alert(
        client, alert_type="spend_threshold_reached", threshold=1, customer_id=customer_id
    )

    targets = [
        ("contract", contract_id),
        ("commit", commit_id),
        ("contract_credit", credit_id),
        ("contract_credit", customer_credit),
        ("contract_product", usage),
        ("rate_card", card),
        ("billable_metric", metric_id),
        ("alert", alert_id),  # kept: no Metronome response shows an alert's custom fields
    ]
    for entity, entity_id in targets:
        client.v1.custom_fields.set_values(entity=entity, entity_id=entity_id, custom_fields={"src": entity})  # type: ignore[arg-type]

    contract = client.v1.contracts.retrieve(customer_id=customer_id, contract_id=contract_id).data
    assert contract.custom_fields == {"src": "contract"}
    assert contract.current.commits[0].custom_fields == {"src": "commit"}
    assert contract.current.credits[0].custom_fields == {"src": "contract_credit"}  # type: ignore[index]
    listed = client.v1.contracts.list(customer_id=customer_id).data[0]
    assert listed.custom_fields == {"src": "contract"}
    credits = client.v1.customers.credits.list(customer_id=customer_id, credit_id=customer_credit).data
    assert credits[0].custom_fields == {"src": "contract_credit"}
    assert client.v1.contracts.products.retrieve(id=usage).data.custom_fields == {"src": "contract_product"}
    assert client.v1.contracts.rate_cards.retrieve(id=card).data.custom_fields == {"src": "rate_card"}
    assert client.v1.billable_metrics.retrieve(billable_metric_id=metric_id).data.custom_fields == {
        "src": "billable_metric"
    }


@pytest.mark.parametrize(
    ("entity", "reason"),
    [
        ("plan", "meterline has no plan objects"),
        ("subscription", "meterline has no subscription objects"),
        ("invoice", "custom fields on invoices are not supported yet"),
        (
            "product",
            "is a plan product, which meterline does not have; its products are contract products "
            "(entity contract_product)",
        ),
    ],
)
def test_entities_meterline_does_not_have_are_refused_by_name(
    client: Metronome, entity: str, reason: str
) -> None:
    supported = (
        "alert, billable_metric, commit, contract, contract_credit, contract_product, customer, rate_card"
    )
    expected = f"entity: {entity!r} {reason}; custom fields apply to {supported}"
    calls = [
        lambda: client.v1.custom_fields.add_key(entity=entity, key="k", enforce_uniqueness=False),  # type: ignore[arg-type]
        lambda: client.v1.custom_fields.set_values(entity=entity, entity_id="x", custom_fields={"k": "v"}),  # type: ignore[arg-type]
        lambda: client.v1.custom_fields.delete_values(entity=entity, entity_id="x", keys=["k"]),  # type: ignore[arg-type]
    ]
    for call in calls:
        assert error_of(call, 400) == expected


def test_unknown_entities_and_ids_are_refused(client: Metronome) -> None:
    message = error_of(
        lambda: client.v1.custom_fields.set_values(entity="widget", entity_id="x", custom_fields={}),  # type: ignore[arg-type]
        400,
    )
    assert message.startswith("entity: input should be 'alert', 'billable_metric'")
    missing = "00000000-0000-4000-8000-0000000000cf"
    message = error_of(
        lambda: client.v1.custom_fields.set_values(
            entity="contract", entity_id=missing, custom_fields={"a": "b"}
        ),
        404,
    )
    assert message == f"entity_id: no contract with id {missing}"
    # A credit's id is not a commit's.
    customer_id = customer(client)
    credit = add_credit(client, customer_id, 1)
    message = error_of(
        lambda: client.v1.custom_fields.set_values(
            entity="commit", entity_id=credit, custom_fields={"a": "b"}
        ),
        404,
    )
    assert message == f"entity_id: no commit with id {credit}"


def test_keys_and_values_longer_than_metronome_allows_are_refused(client: Metronome) -> None:
    customer_id = customer(client)
    message = error_of(
        lambda: client.v1.custom_fields.set_values(
            entity="customer", entity_id=customer_id, custom_fields={"k": "v" * 201}
        ),
        400,
    )
    assert message == "custom_fields.k: string should have at most 200 characters"
    message = error_of(
        lambda: client.v1.custom_fields.add_key(entity="customer", key="k" * 101, enforce_uniqueness=False),
        400,
    )
    assert message == "key: string should have at most 100 characters"
    error_of(lambda: client.v1.customers.create(name="long", custom_fields={"k": "v" * 201}), 400)
    assert client.v1.customers.retrieve(customer_id=customer_id).data.custom_fields == {}


def test_a_key_that_enforces_uniqueness_refuses_a_value_another_active_entity_holds(
    client: Metronome,
) -> None:
    key = f"crm_{uid()}"
    client.v1.custom_fields.add_key(entity="customer", key=key, enforce_uniqueness=True)
    first = client.v1.customers.create(name=f"u {uid()}", custom_fields={key: "A-1"}).data.id
    second = customer(client)

    message = error_of(
        lambda: client.v1.custom_fields.set_values(
            entity="customer", entity_id=second, custom_fields={key: "A-1"}
        ),
        409,
    )
    assert message == (
        f"custom_fields.{key}: value 'A-1' is already held by customer {first}, and key {key!r} "
        "enforces unique values on customer"
    )
    error_of(lambda: client.v1.customers.create(name=f"u {uid()}", custom_fields={key: "A-1"}), 409)
    # Setting its own value again is no conflict; another value is free.
    client.v1.custom_fields.set_values(entity="customer", entity_id=first, custom_fields={key: "A-1"})
    client.v1.custom_fields.set_values(entity="customer", entity_id=second, custom_fields={key: "A-2"})

    # An archived customer holds its value no more.
    client.v1.customers.archive(id=first)
    third = client.v1.customers.create(name=f"u {uid()}", custom_fields={key: "A-1"}).data.id
    assert client.v1.customers.retrieve(customer_id=third).data.custom_fields == {key: "A-1"}


def test_uniqueness_holds_within_one_contract_and_per_entity_type(client: Metronome) -> None:
    key = f"line_{uid()}"
    client.v1.custom_fields.add_key(entity="commit", key=key, enforce_uniqueness=True)
    customer_id, fixed, card = customer(client), new_fixed_product(client), new_card(client)
    commit = {"type": "PREPAID", "product_id": fixed, "priority": 1, "access_schedule": access(1, JAN, FAR)}
    message = error_of(
        lambda: client.v1.contracts.create(
            customer_id=customer_id,
            rate_card_id=card,
            starting_at=JAN,
            commits=[{**commit, "custom_fields": {key: "L1"}}, {**commit, "custom_fields": {key: "L1"}}],
        ),
        409,
    )
    assert message.startswith(f"commits.1.custom_fields.{key}: value 'L1' is already held by commit ")
    assert client.v1.contracts.list(customer_id=customer_id).data == []
    # Credits are another entity type: the same value is theirs to hold.
    client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=card,
        starting_at=JAN,
        commits=[{**commit, "custom_fields": {key: "L1"}}],
        credits=[
            {
                "product_id": fixed,
                "priority": 1,
                "access_schedule": access(1, JAN, FAR),
                "custom_fields": {key: "L1"},
            }
        ],
    )


def test_enforcing_uniqueness_on_a_key_whose_values_repeat_is_refused(client: Metronome) -> None:
    key = f"dup_{uid()}"
    for _ in range(2):
        client.v1.customers.create(name=f"d {uid()}", custom_fields={key: "same"})
    message = error_of(
        lambda: client.v1.custom_fields.add_key(entity="customer", key=key, enforce_uniqueness=True), 409
    )
    assert message == (
        f"enforce_uniqueness: several active customer entities hold value 'same' for key {key!r}; "
        "give them distinct values first"
    )
    assert keys_named(client, {key}) == []


def test_a_value_set_on_a_credit_moves_the_alerts_that_filter_on_it(client: Metronome) -> None:
    """Alerts scoped by custom_field_filters see a value set later: the customer is re-measured."""
    customer_id = customer(client)
    credit = add_credit(client, customer_id, 1000)
    alert_id = create_alert(
        client,
        alert_type="low_remaining_contract_credit_balance_reached",
        threshold=500,
        customer_id=customer_id,
        custom_field_filters=[{"entity": "ContractCredit", "key": "pool", "value": "eng"}],
    )
    wait_status(client, alert_id, customer_id, ("in_alarm", "alert_created"))  # no credit of the pool yet
    client.v1.custom_fields.set_values(
        entity="contract_credit", entity_id=credit, custom_fields={"pool": "eng"}
    )
    wait_status(client, alert_id, customer_id, ("ok", "reevaluation"))
    client.v1.custom_fields.delete_values(entity="contract_credit", entity_id=credit, keys=["pool"])
    wait_status(client, alert_id, customer_id, ("in_alarm", "reevaluation"))
