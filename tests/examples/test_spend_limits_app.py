"""The seed workflow end to end: a real meterline server, the spend-limits example app, real webhooks.

Limits SOFT 5000 / HARD 10000 cents; usage at 100 cents a call crosses SOFT (the customer is
notified, still allowed), then HARD (blocked); raising the limits archives and re-creates the
alerts, the archived HARD alert's `_resolved` notification lifts the block. A replayed
notification (same id) changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
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
from tests.support.server import RunningServer, free_port, start_server
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def meterline(
    backend: str, module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("spend-limits")
    options = {"METERLINE_WEBHOOK_POLL_INTERVAL_S": "0.05"}
    if backend == "postgres":
        options["METERLINE_SECRET_KEY"] = Fernet.generate_key().decode()
    running = start_server(module_database_url, workdir, **options)
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


def test_changing_one_limit_keeps_the_other_alert(
    meterline: RunningServer, client: Metronome, app_url: str
) -> None:
    """Raising only the HARD limit must not send the customer the SOFT notice a second time."""
    customer = _customer_paying_100_cents_a_call(client)
    limits = f"{app_url}/customers/{customer}/limits"
    first = httpx.post(limits, json={"soft_limit_cents": 5000, "hard_limit_cents": 10000}).json()
    _calls(client, customer, 60)  # past SOFT, short of HARD
    wait_for(lambda: _status(app_url, customer), lambda s: len(s["notices"]) == 1)

    raised = httpx.post(limits, json={"soft_limit_cents": 5000, "hard_limit_cents": 20000}).json()
    assert raised["soft_alert_id"] == first["soft_alert_id"]
    assert raised["hard_alert_id"] != first["hard_alert_id"]
    lowered = httpx.post(limits, json={"soft_limit_cents": 4000, "hard_limit_cents": 20000}).json()
    assert lowered["hard_alert_id"] == raised["hard_alert_id"]
    assert lowered["soft_alert_id"] != first["soft_alert_id"]

    # The new SOFT alert (4000) fires at once: that notice is the only second one. Once meterline
    # has evaluated every alert and delivered everything, the customer has exactly two notices.
    for alert_id in (lowered["soft_alert_id"], lowered["hard_alert_id"]):
        wait_for(
            lambda alert_id=alert_id: (
                client.v1.customers.alerts.retrieve(
                    alert_id=alert_id, customer_id=customer
                ).data.customer_status
            ),
            lambda status: status in ("ok", "in_alarm"),
        )
    wait_for(lambda: _all_delivered(meterline, customer), bool)
    notices = _status(app_url, customer)["notices"]
    assert len(notices) == 2 and notices[1]["spend"] == 6000
    triggered = [
        n
        for n in _outbox(meterline.database_url)
        if n["type"] == TRIGGERED and n["properties"]["customer_id"] == customer
    ]
    assert sorted(n["properties"]["alert_id"] for n in triggered) == sorted(
        [first["soft_alert_id"], lowered["soft_alert_id"]]
    )


def _all_delivered(meterline: RunningServer, customer_id: str) -> bool:
    """Every notification about the customer reached the app (earlier tests' apps are gone, so
    their endpoints' deliveries stay pending: only a success counts)."""
    return all(
        any(d["state"] == "succeeded" for d in _deliveries(meterline, notification_id=n["id"]))
        for n in _outbox(meterline.database_url)
        if n["properties"]["customer_id"] == customer_id
    )


REPO = Path(__file__).resolve().parents[2]


def _run_app(token: str, port: int, **env: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("METERLINE_")}
    environment.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "examples.spend_limits_app", "--token", token, "--port", str(port)],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_app_finds_meterline_where_serve_listens(meterline: RunningServer) -> None:
    """The server is not on 8080: METERLINE_PORT, the setting `serve` reads, points the app at it."""
    server_port = meterline.base_url.rsplit(":", 1)[1]
    app_port = free_port()
    running = _run_app(meterline.token, app_port, METERLINE_PORT=server_port)
    try:
        assert running.stdout is not None
        assert running.stdout.readline().startswith(f"spend-limits app on http://127.0.0.1:{app_port}")
        answer = httpx.get(f"http://127.0.0.1:{app_port}/customers/nobody")
        assert answer.json()["access"] == "allowed"
    finally:
        running.terminate()
        running.wait(10)

    unreachable = _run_app(meterline.token, free_port(), METERLINE_PORT=str(free_port()))
    _out, err = unreachable.communicate(timeout=60)
    assert unreachable.returncode == 1
    assert "cannot reach meterline at http://127.0.0.1:" in err and "--meterline-url" in err
