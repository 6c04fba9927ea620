"""Customers through the Metronome SDK: create, retrieve, list and page, archive, aliases, rename."""

from __future__ import annotations

from collections import Counter

import metronome
import pytest
from metronome import Metronome

from tests.sdk.helpers import uid


def test_create_returns_the_customer_and_retrieve_shows_its_details(client: Metronome) -> None:
    alias = f"acme-{uid()}"
    created = client.v1.customers.create(
        name="Acme Corp", ingest_aliases=[alias, f"{alias}-2"], custom_fields={"tier": "gold"}
    ).data
    assert created.id
    assert created.name == "Acme Corp"
    assert created.ingest_aliases == [alias, f"{alias}-2"]
    assert created.external_id == alias
    assert created.custom_fields == {"tier": "gold"}

    detail = client.v1.customers.retrieve(customer_id=created.id).data
    assert detail.id == created.id
    assert detail.name == "Acme Corp"
    assert detail.ingest_aliases == [alias, f"{alias}-2"]
    assert detail.custom_fields == {"tier": "gold"}
    assert detail.archived_at is None
    assert detail.created_at.tzinfo is not None
    assert detail.updated_at >= detail.created_at


def test_external_id_is_the_customer_id_when_there_is_no_alias(client: Metronome) -> None:
    created = client.v1.customers.create(name=f"plain {uid()}").data
    assert created.ingest_aliases == []
    assert created.external_id == created.id


def test_retrieve_of_an_unknown_customer_is_not_found(client: Metronome) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(metronome.NotFoundError) as raised:
        client.v1.customers.retrieve(customer_id=missing)
    assert raised.value.status_code == 404
    assert missing in raised.value.body["message"]  # type: ignore[index]


def test_list_pages_through_every_customer_exactly_once(client: Metronome) -> None:
    ids = [client.v1.customers.create(name=f"paged {uid()}").data.id for _ in range(5)]

    # The SDK's auto-pagination follows next_page.
    seen = Counter(c.id for c in client.v1.customers.list(customer_ids=ids, limit=2))
    assert seen == Counter(ids)

    # Walking next_page by hand: pages of at most 2, and the last page says there is no more.
    pages = []
    page = client.v1.customers.list(customer_ids=ids, limit=2)
    while True:
        pages.append([c.id for c in page.data])
        if not page.next_page:
            break
        page = client.v1.customers.list(customer_ids=ids, limit=2, next_page=page.next_page)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert Counter(i for p in pages for i in p) == Counter(ids)


def test_list_filters_by_ingest_alias(client: Metronome) -> None:
    alias = f"filter-{uid()}"
    wanted = client.v1.customers.create(name="wanted", ingest_aliases=[alias]).data.id
    client.v1.customers.create(name="other", ingest_aliases=[f"{alias}-other"])
    assert [c.id for c in client.v1.customers.list(ingest_alias=alias)] == [wanted]


def test_archive_hides_the_customer_and_releases_its_aliases(client: Metronome) -> None:
    alias = f"arch-{uid()}"
    old = client.v1.customers.create(name="old", ingest_aliases=[alias]).data.id

    assert client.v1.customers.archive(id=old).data.id == old

    detail = client.v1.customers.retrieve(customer_id=old).data
    assert detail.archived_at is not None
    assert detail.ingest_aliases == [alias]  # kept on record
    assert [c.id for c in client.v1.customers.list(customer_ids=[old])] == []
    archived = [c.id for c in client.v1.customers.list(customer_ids=[old], only_archived=True)]
    assert archived == [old]

    new = client.v1.customers.create(name="new", ingest_aliases=[alias]).data.id
    assert new != old
    assert [c.id for c in client.v1.customers.list(ingest_alias=alias)] == [new]


def test_only_archived_excludes_active_customers(client: Metronome) -> None:
    active = client.v1.customers.create(name=f"active {uid()}").data.id
    assert list(client.v1.customers.list(customer_ids=[active], only_archived=True)) == []


def test_set_ingest_aliases_replaces_the_aliases(client: Metronome) -> None:
    base = f"set-{uid()}"
    cid = client.v1.customers.create(name="aliased", ingest_aliases=[f"{base}-old"]).data.id

    client.v1.customers.set_ingest_aliases(customer_id=cid, ingest_aliases=[f"{base}-a", f"{base}-b"])

    assert client.v1.customers.retrieve(customer_id=cid).data.ingest_aliases == [f"{base}-a", f"{base}-b"]
    # The old alias is free again.
    other = client.v1.customers.create(name="other", ingest_aliases=[f"{base}-old"]).data
    assert other.ingest_aliases == [f"{base}-old"]


def test_an_alias_of_another_active_customer_is_a_conflict(client: Metronome) -> None:
    taken = f"taken-{uid()}"
    client.v1.customers.create(name="owner", ingest_aliases=[taken])
    other = client.v1.customers.create(name="other", ingest_aliases=[f"{taken}-mine"]).data.id

    with pytest.raises(metronome.ConflictError) as raised:
        client.v1.customers.set_ingest_aliases(customer_id=other, ingest_aliases=[f"{taken}-new", taken])
    assert raised.value.status_code == 409
    assert taken in raised.value.body["message"]  # type: ignore[index]
    # Nothing changed.
    assert client.v1.customers.retrieve(customer_id=other).data.ingest_aliases == [f"{taken}-mine"]

    with pytest.raises(metronome.ConflictError) as raised:
        client.v1.customers.create(name="copycat", ingest_aliases=[taken])
    assert taken in raised.value.body["message"]  # type: ignore[index]


def test_set_name_renames_the_customer(client: Metronome) -> None:
    created = client.v1.customers.create(name=f"before {uid()}", custom_fields={"k": "v"}).data

    renamed = client.v1.customers.set_name(customer_id=created.id, name="After Name").data

    assert renamed.id == created.id
    assert renamed.name == "After Name"
    detail = client.v1.customers.retrieve(customer_id=created.id).data
    assert detail.name == "After Name"
    assert detail.custom_fields == {"k": "v"}
    assert detail.updated_at >= detail.created_at


def test_changes_to_an_unknown_customer_are_not_found(client: Metronome) -> None:
    missing = "00000000-0000-4000-8000-000000000001"
    with pytest.raises(metronome.NotFoundError):
        client.v1.customers.set_name(customer_id=missing, name="x")
    with pytest.raises(metronome.NotFoundError):
        client.v1.customers.set_ingest_aliases(customer_id=missing, ingest_aliases=["x"])
    with pytest.raises(metronome.NotFoundError):
        client.v1.customers.archive(id=missing)
