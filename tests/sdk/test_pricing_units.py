"""Pricing units (credit types) through the Metronome SDK: list, create, archive."""

from __future__ import annotations

import metronome
import pytest
from metronome import Metronome

from tests.sdk.helpers import uid

USD_CENTS = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"


def test_usd_cents_is_listed_as_a_currency(client: Metronome) -> None:
    by_id = {unit.id: unit for unit in client.v1.pricing_units.list()}
    assert by_id[USD_CENTS].is_currency is True
    assert by_id[USD_CENTS].name


def test_a_created_unit_is_listed_and_is_not_a_currency(client: Metronome) -> None:
    name = f"credits {uid()}"
    unit_id = client.v1.pricing_units.create(name=name).data.id

    by_id = {unit.id: unit for unit in client.v1.pricing_units.list()}
    assert by_id[unit_id].name == name
    assert by_id[unit_id].is_currency is False


def test_list_pages_with_a_limit(client: Metronome) -> None:
    created = {client.v1.pricing_units.create(name=f"paged {uid()}").data.id for _ in range(3)}
    first = client.v1.pricing_units.list(limit=1)
    assert len(first.data) == 1
    assert first.next_page
    ids = [unit.id for unit in client.v1.pricing_units.list(limit=1)]
    assert len(ids) == len(set(ids))
    assert created | {USD_CENTS} <= set(ids)


def test_an_archived_unit_is_no_longer_listed(client: Metronome) -> None:
    unit_id = client.v1.pricing_units.create(name=f"gone {uid()}").data.id

    assert client.v1.pricing_units.archive(id=unit_id).data.id == unit_id

    assert unit_id not in {unit.id for unit in client.v1.pricing_units.list()}


def test_usd_cents_cannot_be_archived(client: Metronome) -> None:
    with pytest.raises(metronome.BadRequestError) as raised:
        client.v1.pricing_units.archive(id=USD_CENTS)
    assert raised.value.status_code == 400
    assert raised.value.body["message"]  # type: ignore[index]
    assert USD_CENTS in {unit.id for unit in client.v1.pricing_units.list()}


def test_archiving_an_unknown_unit_is_not_found(client: Metronome) -> None:
    with pytest.raises(metronome.NotFoundError):
        client.v1.pricing_units.archive(id="00000000-0000-4000-8000-0000000000aa")
