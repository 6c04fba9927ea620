"""The Idempotency-Key header through the Metronome SDK (which sends it as an extra header): a
repeated request gets the first answer and makes no second effect, a key reused for another
request is a 409, duplicates sent at once make one effect, failures leave the key free, reads
and ingest ignore it, and keys belong to the client and expire."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import metronome
import pytest
from metronome import Metronome
from sqlalchemy import func, select

from meterline.store.db import Database
from meterline.store.tables import customers, idempotency_keys
from tests.sdk.contract_helpers import FAR, JAN, access, error_of, new_card, new_fixed_product
from tests.sdk.helpers import event, hours_ago, uid
from tests.support.server import ENGINE_IN_THREADS, RunningServer, create_token, start_server

HEADER = "Idempotency-Key"


def keyed(key: str) -> dict[str, Any]:
    return {"extra_headers": {HEADER: key}}


def new_key() -> str:
    return f"test-{uuid.uuid4()}"


def customers_named(db: Database, name: str) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).where(customers.c.name == name)).scalar_one())


def test_the_same_request_again_gets_the_first_answer_and_makes_nothing_new(
    client: Metronome, db: Database
) -> None:
    key, name = new_key(), f"retried {uid()}"
    first = client.v1.customers.with_raw_response.create(name=name, custom_fields={"a": "1"}, **keyed(key))
    again = client.v1.customers.with_raw_response.create(name=name, custom_fields={"a": "1"}, **keyed(key))

    assert again.status_code == first.status_code == 200
    assert again.http_response.content == first.http_response.content
    assert again.parse().data.id == first.parse().data.id
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert customers_named(db, name) == 1


def test_key_order_and_spacing_of_the_body_do_not_make_another_request(
    server: RunningServer, db: Database
) -> None:
    key, name = new_key(), f"spacing {uid()}"
    headers = {**server.headers(), HEADER: key}
    with httpx.Client(base_url=server.base_url, headers=headers) as http:
        first = http.post("/v1/customers", content=f'{{"name": "{name}", "custom_fields": {{"x": "1"}}}}')
        again = http.post("/v1/customers", content=f'{{ "custom_fields":{{"x":"1"}},\n  "name":"{name}" }}')
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert customers_named(db, name) == 1


def test_the_same_key_with_another_body_is_a_conflict_naming_the_header(
    client: Metronome, db: Database
) -> None:
    key, name = new_key(), f"first {uid()}"
    client.v1.customers.create(name=name, **keyed(key))
    with pytest.raises(metronome.ConflictError) as raised:
        client.v1.customers.create(name=f"second {uid()}", **keyed(key))
    assert raised.value.body == {
        "message": f"Idempotency-Key: key '{key}' was first used for POST /v1/customers with other "
        "parameters; a key belongs to one request: repeat that request exactly to get its answer "
        "again, or use a new key"
    }
    # The SDK retries a 409 unless told not to: this one will not go away by retrying.
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert customers_named(db, name) == 1


def test_the_same_key_on_another_route_is_a_conflict(client: Metronome) -> None:
    key = new_key()
    client.v1.customers.create(name=f"route {uid()}", **keyed(key))
    message = error_of(lambda: client.v1.pricing_units.create(name=f"unit {uid()}", **keyed(key)), 409)
    assert message.startswith(f"Idempotency-Key: key '{key}' was first used for POST /v1/customers;")


def test_duplicates_sent_at_once_make_one_customer_and_all_get_its_answer(
    client: Metronome, db: Database
) -> None:
    key, name, senders = new_key(), f"concurrent {uid()}", 8
    start = threading.Barrier(senders)

    def send(_: int) -> str:
        start.wait()
        return client.v1.customers.create(name=name, **keyed(key)).data.id

    with ThreadPoolExecutor(senders) as pool:
        ids = list(pool.map(send, range(senders)))
    assert len(set(ids)) == 1
    assert customers_named(db, name) == 1


def test_concurrent_requests_reusing_a_key_for_other_bodies_get_one_effect_and_409s(
    client: Metronome, db: Database
) -> None:
    key, senders = new_key(), 6
    names = [f"racer {i} {uid()}" for i in range(senders)]
    start = threading.Barrier(senders)

    def send(name: str) -> int:
        start.wait()
        try:
            client.v1.customers.create(name=name, **keyed(key))
        except metronome.ConflictError:
            return 409
        return 200

    with ThreadPoolExecutor(senders) as pool:
        statuses = list(pool.map(send, names))
    assert sorted(statuses) == [200] + [409] * (senders - 1)
    assert sum(customers_named(db, name) for name in names) == 1


def test_keyed_writes_finish_while_more_writers_than_handler_threads_wait(server: RunningServer) -> None:
    """A keyed request holds its transaction from its first read to its end; with more plain
    writers waiting for the write lock than the server has handler threads (40), it still ends
    (it takes the lock on its own handler thread, and commits on a thread of its own)."""

    def own_client() -> Metronome:  # one connection per caller, as separate applications have
        return Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0, timeout=30)

    customer_id = own_client().v1.customers.create(name=f"busy {uid()}").data.id
    plain, keyed_count = 150, 30
    start = threading.Barrier(plain + keyed_count)

    def rename(i: int) -> str:
        client = own_client()
        start.wait()
        return client.v1.customers.set_name(customer_id=customer_id, name=f"n{i}").data.id

    def create(i: int) -> str:
        client = own_client()
        start.wait()
        return client.v1.customers.create(name=f"keyed {i} {uid()}", **keyed(new_key())).data.id

    with ThreadPoolExecutor(plain + keyed_count) as pool:
        renamed = [pool.submit(rename, i) for i in range(plain)]
        created = [pool.submit(create, i) for i in range(keyed_count)]
        assert {f.result(timeout=60) for f in renamed} == {customer_id}
        assert len({f.result(timeout=60) for f in created}) == keyed_count


def test_a_request_refused_as_invalid_leaves_the_key_free_for_the_corrected_one(client: Metronome) -> None:
    key = new_key()
    error_of(lambda: client.v1.customers.create(name="", **keyed(key)), 400)
    created = client.v1.customers.create(name=f"corrected {uid()}", **keyed(key)).data
    again = client.v1.customers.create(name=created.name, **keyed(key)).data
    assert again.id == created.id


def test_a_request_refused_for_the_state_runs_again_once_the_state_allows_it(client: Metronome) -> None:
    """A 409 (the alias is taken) is not replayed: once the holder releases the alias, the same
    request with the same key creates the customer."""
    alias, key = f"taken-{uid()}", new_key()
    holder = client.v1.customers.create(name=f"holder {uid()}", ingest_aliases=[alias]).data.id
    body = {"name": f"waiting {uid()}", "ingest_aliases": [alias]}
    message = error_of(lambda: client.v1.customers.create(**body, **keyed(key)), 409)
    assert "already used by another customer" in message
    client.v1.customers.archive(id=holder)
    created = client.v1.customers.create(**body, **keyed(key)).data
    assert created.ingest_aliases == [alias]
    assert client.v1.customers.create(**body, **keyed(key)).data.id == created.id


def test_reads_sent_with_post_ignore_the_key(client: Metronome) -> None:
    key = new_key()
    first = client.v1.customers.with_raw_response.create(name=f"reader {uid()}")
    customer_id = first.parse().data.id
    for _ in range(2):
        listed = client.v1.contracts.with_raw_response.list(customer_id=customer_id, **keyed(key))
        assert "idempotent-replayed" not in listed.headers
    other = client.v1.customers.create(name=f"other {uid()}").data.id
    assert client.v1.contracts.list(customer_id=other, **keyed(key)).data == []


def test_ingest_ignores_the_key_its_events_are_deduplicated_by_transaction_id(client: Metronome) -> None:
    key = new_key()
    for customer in ("a", "b"):  # two different batches, one key: both accepted
        client.v1.usage.ingest(
            usage=[event(f"nobody-{customer}-{uid()}", "idem", hours_ago(0))], **keyed(key)
        )


def test_a_key_longer_than_255_characters_is_refused_naming_the_header(client: Metronome) -> None:
    message = error_of(lambda: client.v1.customers.create(name="x", **keyed("k" * 256)), 400)
    assert message == "Idempotency-Key: must be 1 to 255 printable ASCII characters"


def test_keys_belong_to_the_client_named_by_the_token(server: RunningServer, db: Database) -> None:
    """Another client's request with the same key is its own; a new token for the same client
    (a rotation) gets the first answer."""
    key, name = new_key(), f"client {uid()}"
    ours = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    other = Metronome(
        bearer_token=create_token(server.database_url, f"other-{uid()}"),
        base_url=server.base_url,
        max_retries=0,
    )
    rotated = Metronome(
        bearer_token=create_token(server.database_url), base_url=server.base_url, max_retries=0
    )

    first = ours.v1.customers.create(name=name, **keyed(key)).data.id
    assert other.v1.customers.create(name=name, **keyed(key)).data.id != first
    assert rotated.v1.customers.create(name=name, **keyed(key)).data.id == first
    assert customers_named(db, name) == 2


# Every kind of write takes the header: each call twice with one key, the second a replay.

Call = Callable[[Any, dict[str, Any]], Any]


@pytest.fixture(scope="module")
def things(server: RunningServer) -> dict[str, str]:
    client = Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)
    customer_id = client.v1.customers.create(name=f"writes {uid()}").data.id
    metric_id = client.v1.billable_metrics.create(
        name=f"m {uid()}", aggregation_type="COUNT", event_type_filter={"in_values": [f"e{uid()}"]}
    ).data.id
    card = new_card(client)
    contract_id = client.v1.contracts.create(
        customer_id=customer_id, rate_card_id=card, starting_at=JAN
    ).data.id
    alert_id = client.v1.alerts.create(
        alert_type="spend_threshold_reached", name=f"a {uid()}", threshold=100, customer_id=customer_id
    ).data.id
    return {
        "customer": customer_id,
        "metric": metric_id,
        "card": card,
        "fixed": new_fixed_product(client),
        "contract": contract_id,
        "alert": alert_id,
    }


WRITES: dict[str, Call] = {
    "customers/setName": lambda c, o: c.v1.customers.set_name(
        customer_id=o["customer"], name="renamed", **o["k"]
    ),
    "customers/setIngestAliases": lambda c, o: c.v1.customers.set_ingest_aliases(
        customer_id=o["customer"], ingest_aliases=[f"set-{o['customer']}"], **o["k"]
    ),
    "billable-metrics/create": lambda c, o: c.v1.billable_metrics.create(
        name="m",
        aggregation_type="COUNT",
        event_type_filter={"in_values": [o["k"]["extra_headers"][HEADER]]},
        **o["k"],
    ),
    "billable-metrics/update (PUT)": lambda c, o: c.v1.billable_metrics.update(
        billable_metric_id=o["metric"], name="renamed", **o["k"]
    ),
    "products/create": lambda c, o: c.v1.contracts.products.create(name="p", type="FIXED", **o["k"]),
    "rate-cards/addRate": lambda c, o: c.v1.contracts.rate_cards.rates.add(
        rate_card_id=o["card"],
        product_id=o["fixed"],
        entitled=True,
        rate_type="FLAT",
        price=1,
        starting_at=JAN,
        **o["k"],
    ),
    "contracts/create": lambda c, o: c.v1.contracts.create(
        customer_id=o["customer"], rate_card_id=o["card"], starting_at=JAN, **o["k"]
    ),
    "customerCredits/create": lambda c, o: c.v1.customers.credits.create(
        customer_id=o["customer"],
        product_id=o["fixed"],
        priority=1,
        access_schedule=access(10, JAN, FAR),
        **o["k"],
    ),
    "alerts/create": lambda c, o: c.v1.alerts.create(
        alert_type="spend_threshold_reached", name="a", threshold=5, customer_id=o["customer"], **o["k"]
    ),
    "customer-alerts/reset": lambda c, o: c.v1.customers.alerts.reset(
        alert_id=o["alert"], customer_id=o["customer"], **o["k"]
    ),
    "customFields/setValues": lambda c, o: c.v1.custom_fields.set_values(
        entity="contract", entity_id=o["contract"], custom_fields={"po": "1"}, **o["k"]
    ),
    "contracts/archive": lambda c, o: c.v1.contracts.archive(
        customer_id=o["customer"], contract_id=o["contract"], void_invoices=False, **o["k"]
    ),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_kind_of_write_replays_its_first_answer(
    client: Metronome, things: dict[str, str], write: str
) -> None:
    raw = client.with_raw_response
    options = {**things, "k": keyed(new_key())}
    first = WRITES[write](raw, options)
    again = WRITES[write](raw, options)
    assert first.status_code == again.status_code == 200
    assert again.http_response.content == first.http_response.content
    assert again.headers.get("idempotent-replayed") == "true"


# Keys expire: a server of its own whose keys last a few seconds (the three requests before the
# wait must fall within one lifetime, on a machine busy with other work too).

TTL_S = 5.0


@pytest.fixture
def short_lived(own_database_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    """A server keeping idempotency keys TTL_S; the keys are under test, not the engine's processes
    (which run as threads)."""
    running = start_server(
        own_database_url,
        tmp_path,
        **ENGINE_IN_THREADS,
        METERLINE_IDEMPOTENCY_KEY_TTL_HOURS=str(TTL_S / 3600),
    )
    try:
        yield running
    finally:
        running.stop()


def test_an_expired_key_is_new_again_and_expired_keys_are_purged(short_lived: RunningServer) -> None:
    client = Metronome(bearer_token=short_lived.token, base_url=short_lived.base_url, max_retries=0)
    key, other = new_key(), new_key()
    first = client.v1.customers.create(name="expiring", **keyed(key)).data.id
    client.v1.customers.create(name="also expiring", **keyed(other))
    assert client.v1.customers.create(name="expiring", **keyed(key)).data.id == first
    time.sleep(TTL_S + 0.2)

    assert client.v1.customers.create(name="expiring", **keyed(key)).data.id != first
    db = Database(short_lived.database_url, pool_size=1)
    try:
        with db.read() as conn:
            kept = conn.execute(select(idempotency_keys.c.key)).scalars().all()
    finally:
        db.dispose()
    assert kept == [key]  # `other` expired and was purged by the next keyed request
