"""The seed workflow end to end: a real meterline server, the spend-limits example app, real webhooks.

Limits SOFT 5000 / HARD 10000 cents; usage at 100 cents a call crosses SOFT (the customer is
notified, still allowed), then HARD (blocked); raising the limits archives and re-creates the
alerts, the archived HARD alert's `_resolved` notification lifts the block. A replayed
notification (same id) changes nothing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from examples.spend_limits_app.app import HARD, RESOLVED, TRIGGERED, WEBHOOK_PATH, SpendLimits, make_server
from metronome import Metronome
from sqlalchemy import select
from standardwebhooks import Webhook

from meterline.delivery.secrets import generate_secret
from meterline.delivery.signing import signed_headers
from meterline.store.db import Database
from meterline.store.tables import notifications
from tests.support.databases import fresh_postgres_database
from tests.support.server import RunningServer, free_port, start_server
from tests.support.waiting import wait_for


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def meterline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("spend-limits")
    options = {"METERLINE_WEBHOOK_POLL_INTERVAL_S": "0.05"}
    if request.param == "sqlite":
        running = start_server(f"sqlite:///{workdir / 'meterline.db'}", workdir, **options)
        yield running
        running.stop()
        return
    with fresh_postgres_database(request.getfixturevalue("postgres_database_url")) as url:
        running = start_server(url, workdir, METERLINE_SECRET_KEY=Fernet.generate_key().decode(), **options)
        yield running
        running.stop()


@pytest.fixture
def client(meterline: RunningServer) -> Metronome:
    return Metronome(bearer_token=meterline.token, base_url=meterline.base_url, max_retries=0)


@pytest.fixture
def app_url(client: Metronome) -> Iterator[str]:
    """The example app, registered with meterline as its webhook endpoint."""
    app = SpendLimits(client)
    port = free_port()
    server = make_server(app, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app.register(f"http://127.0.0.1:{port}{WEBHOOK_PATH}")
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def _customer_paying_100_cents_a_call(client: Metronome) -> str:
    customer = client.v1.customers.create(
        name="Acme", ingest_aliases=[f"acme-{uuid.uuid4().hex[:8]}"]
    ).data.id
    metric = client.v1.billable_metrics.create(
        name="calls", aggregation_type="COUNT", event_type_filter={"in_values": ["call"]}
    ).data.id
    product = client.v1.contracts.products.create(
        name="Calls", type="USAGE", billable_metric_id=metric
    ).data.id
    rate_card = client.v1.contracts.rate_cards.create(name="Standard").data.id
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    client.v1.contracts.rate_cards.rates.add(
        rate_card_id=rate_card,
        product_id=product,
        entitled=True,
        rate_type="FLAT",
        starting_at=month,
        price=100,
    )
    client.v1.contracts.create(customer_id=customer, rate_card_id=rate_card, starting_at=month)
    return customer


def _calls(client: Metronome, customer_id: str, count: int) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.v1.usage.ingest(
        usage=[
            {
                "transaction_id": uuid.uuid4().hex,
                "customer_id": customer_id,
                "event_type": "call",
                "timestamp": now,
            }
            for _ in range(count)
        ]
    )


def _status(app_url: str, customer_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{app_url}/customers/{customer_id}").json()
    return answer


def _outbox(database_url: str) -> list[dict[str, Any]]:
    """Every notification meterline wrote, read from its database."""
    db = Database(database_url)
    try:
        with db.read() as conn:
            return [json.loads(p) for p in conn.execute(select(notifications.c.payload)).scalars()]
    finally:
        db.dispose()


def _deliveries(meterline: RunningServer, **filters: str) -> list[dict[str, Any]]:
    answer = httpx.post(
        f"{meterline.base_url}/v1/webhooks/deliveries/list", headers=meterline.headers(), json=filters
    )
    found: list[dict[str, Any]] = answer.json()["data"]
    return found


def test_the_seed_workflow(meterline: RunningServer, client: Metronome, app_url: str) -> None:
    customer = _customer_paying_100_cents_a_call(client)
    first = httpx.post(
        f"{app_url}/customers/{customer}/limits", json={"soft_limit_cents": 5000, "hard_limit_cents": 10000}
    ).json()

    _calls(client, customer, 50)  # 5,000 cents: the SOFT limit
    notified = wait_for(lambda: _status(app_url, customer), lambda s: len(s["notices"]) == 1)
    assert notified["access"] == "allowed"
    assert notified["notices"][0]["spend"] == 5000

    _calls(client, customer, 50)  # 10,000 cents: the HARD limit
    blocked = wait_for(lambda: _status(app_url, customer), lambda s: s["access"] == "blocked")
    assert len(blocked["notices"]) == 1  # SOFT notified once, not again

    raised = httpx.post(
        f"{app_url}/customers/{customer}/limits", json={"soft_limit_cents": 15000, "hard_limit_cents": 20000}
    ).json()
    assert raised["hard_alert_id"] != first["hard_alert_id"]
    restored = wait_for(lambda: _status(app_url, customer), lambda s: s["access"] == "allowed")
    assert restored["limits"]["hard_limit_cents"] == 20000
    hard_resolved = next(
        n
        for n in _outbox(meterline.database_url)
        if n["type"] == RESOLVED and n["properties"]["alert_id"] == first["hard_alert_id"]
    )
    [delivered] = _deliveries(meterline, notification_id=hard_resolved["id"])
    assert delivered["state"] == "succeeded"

    # At least once: every trigger sent again (same ids) changes nothing.
    triggered = [d for d in _deliveries(meterline) if d["notification_type"] == TRIGGERED]
    assert len(triggered) == 2
    for delivery in triggered:
        httpx.post(
            f"{meterline.base_url}/v1/webhooks/deliveries/replay",
            headers=meterline.headers(),
            json={"notification_id": delivery["notification_id"]},
        )
    wait_for(
        lambda: [d for d in _deliveries(meterline) if d["notification_type"] == TRIGGERED],
        lambda found: all(d["state"] == "succeeded" and d["attempt_count"] == 2 for d in found),
    )
    assert _status(app_url, customer)["access"] == "allowed"
    assert len(_status(app_url, customer)["notices"]) == 1


def _signed(secret: str, kind: str, alert_id: str, timestamp: str) -> tuple[bytes, dict[str, str]]:
    notification_id = str(uuid.uuid4())
    body = json.dumps(
        {"id": notification_id, "type": kind, "properties": {"alert_id": alert_id, "timestamp": timestamp}}
    ).encode()
    return body, signed_headers([secret], notification_id, int(time.time()), body)


def test_duplicates_late_arrivals_and_forgeries_are_ignored() -> None:
    app = SpendLimits(Metronome(bearer_token="unused", base_url="http://127.0.0.1:9"))
    secret = generate_secret()
    app.verifier = Webhook(secret)
    app.alerts["hard-1"] = ("acme", HARD)
    trigger = _signed(secret, TRIGGERED, "hard-1", "2026-01-01T10:00:00Z")
    resolve = _signed(secret, RESOLVED, "hard-1", "2026-01-01T11:00:00.250Z")

    assert app.receive(*trigger) == 204
    assert app.status("acme")["access"] == "blocked"
    assert app.receive(*resolve) == 204
    assert app.receive(*trigger) == 204  # the same id again: already handled
    assert app.status("acme")["access"] == "allowed"
    late = _signed(secret, TRIGGERED, "hard-1", "2026-01-01T10:30:00Z")  # older than the resolution
    assert app.receive(*late) == 204
    assert app.status("acme")["access"] == "allowed"
    forged = _signed(generate_secret(), TRIGGERED, "hard-1", "2026-01-01T12:00:00Z")
    assert app.receive(*forged) == 400
    assert app.status("acme")["access"] == "allowed"
