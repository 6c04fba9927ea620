"""Contract-pricing products through the Metronome SDK: create and round-trip, update history,
archive and list filters, pagination, validation errors, and the state the billing engine reads.
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

from meterline.domain.pricing import ConversionOperation, QuantityConversion, QuantityRounding, RoundingMethod
from meterline.domain.timeutil import to_us
from meterline.store import products as product_store
from meterline.store.db import Database
from tests.support.server import RunningServer

MISSING_ID = "00000000-0000-4000-8000-0000000000cc"
UNSUPPORTED_TYPES = ["COMPOSITE", "PROFESSIONAL_SERVICE", "PRO_SERVICE"]


@pytest.fixture
def client(server: RunningServer) -> Metronome:
    return Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)


def uid() -> str:
    return uuid.uuid4().hex[:12]


def hour(hours_from_now: int) -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=hours_from_now)


def new_metric(client: Metronome, group_keys: list[list[str]] | None = None) -> str:
    created = client.v1.billable_metrics.create(
        name=f"tokens {uid()}",
        aggregation_type="SUM",
        aggregation_key="tokens",
        event_type_filter={"in_values": [f"llm_{uid()}"]},
        group_keys=group_keys or [],
    )
    return created.data.id


def new_product(client: Metronome, **fields: Any) -> str:
    fields.setdefault("name", f"product {uid()}")
    fields.setdefault("type", "FIXED")
    return client.v1.contracts.products.create(**fields).data.id


def error_of(call: Any, status: int) -> str:
    """Run an SDK call expected to fail with `status`; return the server's message."""
    with pytest.raises(metronome.APIStatusError) as raised:
        call()
    assert raised.value.status_code == status, raised.value.response.text
    message: str = raised.value.response.json()["message"]
    return message


def all_product_ids(client: Metronome, **params: Any) -> list[str]:
    return [p.id for p in client.v1.contracts.products.list(limit=100, **params)]


def test_usage_product_round_trips_every_field(client: Metronome) -> None:
    metric_id = new_metric(client, [["region", "model"]])
    name = f"LLM tokens {uid()}"
    product_id = new_product(
        client,
        name=name,
        type="USAGE",
        billable_metric_id=metric_id,
        pricing_group_key=["region"],
        presentation_group_key=["model"],
        quantity_conversion={"conversion_factor": 1024, "operation": "DIVIDE", "name": "MB to GB"},
        quantity_rounding={"decimal_places": 2, "rounding_method": "ROUND_HALF_UP"},
        tags=["ai", "tokens"],
        custom_fields={"owner": "billing"},
        is_refundable=False,
        netsuite_internal_item_id="ns-internal",
        netsuite_overage_item_id="ns-overage",
    )

    got = client.v1.contracts.products.retrieve(id=product_id).data
    assert got.id == product_id
    assert got.type == "USAGE"
    assert got.archived_at is None
    assert got.custom_fields == {"owner": "billing"}
    assert got.updates == []
    for state in (got.initial, got.current):
        assert state.name == name
        assert state.billable_metric_id == metric_id
        assert state.pricing_group_key == ["region"]
        assert state.presentation_group_key == ["model"]
        assert state.quantity_conversion is not None
        assert state.quantity_conversion.to_dict() == {
            "conversion_factor": 1024,
            "operation": "DIVIDE",
            "name": "MB to GB",
        }
        assert state.quantity_rounding is not None
        assert state.quantity_rounding.to_dict() == {"decimal_places": 2, "rounding_method": "ROUND_HALF_UP"}
        assert state.tags == ["ai", "tokens"]
        assert state.is_refundable is False
        assert state.netsuite_internal_item_id == "ns-internal"
        assert state.netsuite_overage_item_id == "ns-overage"
        assert state.created_by
        assert abs(state.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    listed = {p.id: p for p in client.v1.contracts.products.list(limit=100)}
    assert listed[product_id].to_dict() == got.to_dict()


def test_fixed_product_round_trips(client: Metronome) -> None:
    name = f"Platform fee {uid()}"
    product_id = new_product(client, name=name, type="fixed", tags=["platform"])

    got = client.v1.contracts.products.retrieve(id=product_id).data
    assert got.type == "FIXED"
    assert got.current.name == name
    assert got.current.tags == ["platform"]
    assert got.current.billable_metric_id is None
    assert got.current.quantity_conversion is None
    assert got.custom_fields == {}


def test_conversion_factor_stays_exact_on_the_wire(client: Metronome, server: RunningServer) -> None:
    metric_id = new_metric(client)
    fields = {
        "name": f"exact {uid()}",
        "type": "USAGE",
        "billable_metric_id": metric_id,
        "quantity_conversion": {"conversion_factor": "FACTOR", "operation": "MULTIPLY"},
    }
    # 21 significant digits, as a JSON number: a float would round this to 1.0.
    body = json.dumps(fields).replace('"FACTOR"', "1.00000000000000000001")
    created = httpx.post(
        f"{server.base_url}/v1/contract-pricing/products/create", content=body, headers=server.headers()
    )
    assert created.status_code == 200, created.text
    product_id = created.json()["data"]["id"]
    got = httpx.post(
        f"{server.base_url}/v1/contract-pricing/products/get",
        json={"id": product_id},
        headers=server.headers(),
    )
    assert got.text.count('"conversion_factor":1.00000000000000000001,') == 2  # initial and current


def test_update_appends_history_and_changes_current(client: Metronome) -> None:
    metric_id = new_metric(client, [["region", "model"]])
    other_metric_id = new_metric(client, [["region"]])
    product_id = new_product(
        client,
        name="v1",
        type="USAGE",
        billable_metric_id=metric_id,
        quantity_conversion={"conversion_factor": 1000, "operation": "DIVIDE"},
        tags=["old"],
    )
    past, future = hour(-48), hour(+48)

    client.v1.contracts.products.update(
        product_id=product_id,
        starting_at=past,
        name="v2",
        billable_metric_id=other_metric_id,
        pricing_group_key=["region"],
        quantity_conversion=None,
        quantity_rounding={"decimal_places": 0, "rounding_method": "ROUND_UP"},
    )
    client.v1.contracts.products.update(product_id=product_id, starting_at=future, name="v3", tags=["new"])

    got = client.v1.contracts.products.retrieve(id=product_id).data
    assert got.initial.name == "v1"
    assert got.initial.billable_metric_id == metric_id
    assert got.initial.quantity_conversion is not None
    assert [u.name for u in got.updates] == ["v2", "v3"]
    assert [u.starting_at for u in got.updates] == [past, future]
    assert got.updates[0].billable_metric_id == other_metric_id
    assert got.updates[0].tags is None  # an update shows only what it changed
    assert got.updates[1].billable_metric_id is None
    # `current` is what is in force now: the past update applies, the future one not yet.
    assert got.current.name == "v2"
    assert got.current.billable_metric_id == other_metric_id
    assert got.current.pricing_group_key == ["region"]
    assert got.current.quantity_conversion is None
    assert got.current.quantity_rounding is not None
    assert got.current.quantity_rounding.rounding_method == "ROUND_UP"
    assert got.current.tags == ["old"]


def test_product_at_reads_the_version_in_force(client: Metronome, db: Database) -> None:
    metric_id = new_metric(client, [["region"]])
    product_id = new_product(
        client,
        name="v1",
        type="USAGE",
        billable_metric_id=metric_id,
        quantity_conversion={"conversion_factor": 0.5, "operation": "MULTIPLY"},
    )
    change = datetime(2024, 6, 1, tzinfo=UTC)
    client.v1.contracts.products.update(
        product_id=product_id,
        starting_at=change,
        name="v2",
        pricing_group_key=["region"],
        quantity_rounding={"decimal_places": 3, "rounding_method": "ROUND_DOWN"},
    )

    with db.read() as conn:
        before = product_store.product_at(conn, product_id, to_us(change) - 1)
        at = product_store.product_at(conn, product_id, to_us(change))
    assert before.name == "v1"
    assert before.pricing_group_key == ()
    assert before.quantity_rounding is None
    assert before.quantity_conversion == QuantityConversion(Decimal("0.5"), ConversionOperation.MULTIPLY)
    assert at.name == "v2"
    assert at.billable_metric_id == metric_id
    assert at.pricing_group_key == ("region",)
    assert at.quantity_rounding == QuantityRounding(3, RoundingMethod.ROUND_DOWN)
    assert at.quantity_conversion == before.quantity_conversion


def test_archive_and_list_filters(client: Metronome) -> None:
    kept = new_product(client)
    archived = new_product(client)
    client.v1.contracts.products.archive(product_id=archived)
    client.v1.contracts.products.archive(product_id=archived)  # archiving twice is harmless

    got = client.v1.contracts.products.retrieve(id=archived).data
    assert got.archived_at is not None
    assert abs(got.archived_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert client.v1.contracts.products.retrieve(id=kept).data.archived_at is None

    default = all_product_ids(client)
    not_archived = all_product_ids(client, archive_filter="NOT_ARCHIVED")
    only_archived = all_product_ids(client, archive_filter="ARCHIVED")
    every = all_product_ids(client, archive_filter="ALL")
    assert kept in default and archived not in default
    assert kept in not_archived and archived not in not_archived
    assert archived in only_archived and kept not in only_archived
    assert kept in every and archived in every


def test_list_paginates_with_small_limit(client: Metronome) -> None:
    mine = {new_product(client) for _ in range(3)}
    first = client.v1.contracts.products.list(limit=2)
    assert len(first.data) == 2
    assert first.next_page is not None

    seen: list[str] = []
    page = first
    while True:
        assert len(page.data) <= 2
        seen.extend(p.id for p in page.data)
        if not page.has_next_page():
            break
        page = page.get_next_page()
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert mine <= set(seen)


def test_usage_product_validation(client: Metronome) -> None:
    metric_id = new_metric(client, [["region"]])
    archived_metric_id = new_metric(client)
    client.v1.billable_metrics.archive(id=archived_metric_id)
    create = client.v1.contracts.products.create

    def usage(**fields: Any) -> Any:
        return lambda: create(name=f"p {uid()}", type="USAGE", **fields)

    assert "billable_metric_id" in error_of(usage(), 400)
    assert "billable_metric_id" in error_of(usage(billable_metric_id=MISSING_ID), 400)
    assert "archived" in error_of(usage(billable_metric_id=archived_metric_id), 400)
    message = error_of(usage(billable_metric_id=metric_id, pricing_group_key=["model"]), 400)
    assert "pricing_group_key" in message and "model" in message
    message = error_of(usage(billable_metric_id=metric_id, presentation_group_key=["nope"]), 400)
    assert "presentation_group_key" in message
    for conversion in (
        {"conversion_factor": 0, "operation": "MULTIPLY"},
        {"conversion_factor": -2, "operation": "DIVIDE"},
    ):
        message = error_of(usage(billable_metric_id=metric_id, quantity_conversion=conversion), 400)
        assert "conversion_factor" in message
    message = error_of(
        usage(billable_metric_id=metric_id, quantity_conversion={"conversion_factor": 2, "operation": "ADD"}),
        400,
    )
    assert "operation" in message
    for rounding in (
        {"decimal_places": -1, "rounding_method": "ROUND_UP"},
        {"decimal_places": 1.5, "rounding_method": "ROUND_UP"},
    ):
        message = error_of(usage(billable_metric_id=metric_id, quantity_rounding=rounding), 400)
        assert "decimal_places" in message
    message = error_of(
        usage(
            billable_metric_id=metric_id,
            quantity_rounding={"decimal_places": 1, "rounding_method": "BANKERS"},
        ),
        400,
    )
    assert "rounding_method" in message


@pytest.mark.parametrize("product_type", UNSUPPORTED_TYPES)
def test_unsupported_product_types_are_refused(client: Metronome, product_type: Any) -> None:
    message = error_of(lambda: client.v1.contracts.products.create(name="x", type=product_type), 400)
    assert "type" in message
    assert f"does not support {product_type}" in message


def test_create_validation(client: Metronome, server: RunningServer) -> None:
    create = client.v1.contracts.products.create
    message = error_of(lambda: create(name="fee", type="FIXED", billable_metric_id=new_metric(client)), 400)
    assert "billable_metric_id" in message and "USAGE" in message
    assert "pricing_group_key" in error_of(
        lambda: create(name="fee", type="FIXED", pricing_group_key=["a"]), 400
    )
    assert "name" in error_of(lambda: create(name="", type="FIXED"), 400)
    assert "composite_product_ids" in error_of(
        lambda: create(name="fee", type="FIXED", composite_product_ids=[MISSING_ID]), 400
    )
    unknown = httpx.post(
        f"{server.base_url}/v1/contract-pricing/products/create",
        json={"name": "fee", "type": "FIXED", "colour": "red"},
        headers=server.headers(),
    )
    assert unknown.status_code == 400
    assert "colour" in unknown.json()["message"]


def test_update_validation(client: Metronome) -> None:
    update = client.v1.contracts.products.update
    metric_id = new_metric(client, [["region"]])
    usage_id = new_product(client, type="USAGE", billable_metric_id=metric_id)
    fixed_id = new_product(client)
    on_hour = hour(-1)

    assert "starting_at" in error_of(
        lambda: update(product_id=usage_id, starting_at=on_hour + timedelta(minutes=30), name="x"), 400
    )
    assert "at least one field" in error_of(lambda: update(product_id=usage_id, starting_at=on_hour), 400)
    assert "product_id" in error_of(lambda: update(product_id=MISSING_ID, starting_at=on_hour, name="x"), 404)
    assert "billable_metric_id" in error_of(
        lambda: update(product_id=fixed_id, starting_at=on_hour, billable_metric_id=metric_id), 400
    )
    assert "pricing_group_key" in error_of(
        lambda: update(product_id=usage_id, starting_at=on_hour, pricing_group_key=["model"]), 400
    )
    assert "billable_metric_id" in error_of(
        lambda: update(product_id=usage_id, starting_at=on_hour, billable_metric_id=MISSING_ID), 400
    )
    client.v1.contracts.products.archive(product_id=fixed_id)
    assert "archived" in error_of(lambda: update(product_id=fixed_id, starting_at=on_hour, name="x"), 400)
    # None of the refused updates left a trace.
    assert client.v1.contracts.products.retrieve(id=usage_id).data.updates == []


def test_unknown_products_are_404(client: Metronome) -> None:
    assert MISSING_ID in error_of(lambda: client.v1.contracts.products.retrieve(id=MISSING_ID), 404)
    assert MISSING_ID in error_of(lambda: client.v1.contracts.products.archive(product_id=MISSING_ID), 404)


def test_list_refuses_bad_filters_and_cursors(client: Metronome, server: RunningServer) -> None:
    url = f"{server.base_url}/v1/contract-pricing/products/list"
    bad_filter = httpx.post(url, json={"archive_filter": "SOME"}, headers=server.headers())
    assert bad_filter.status_code == 400
    assert "archive_filter" in bad_filter.json()["message"]
    bad_cursor = httpx.post(url, params={"next_page": "%%%"}, json={}, headers=server.headers())
    assert bad_cursor.status_code == 400
    assert "next_page" in bad_cursor.json()["message"]
    assert "limit" in error_of(lambda: client.v1.contracts.products.list(limit=0), 400)
