"""The spend-limits example end to end: a real meterline server, the example app, real webhooks.

Limits soft 5000 / hard 10000 cents, set in one call; usage at 100 cents a call crosses the soft
limit (a notice, webhooked; still allowed), then the hard one (blocked, as the app's AccessGuard
hears it from meterline's stream); raising the hard limit lets the customer in again and sends no
second notice. A replayed notification (same id) changes nothing. Runs of calls, each reserved
against the hard limit before it starts, are refused once their cost would pass it.
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
from examples.spend_limits_app.app import SOFT_NOTICE, WEBHOOK_PATH, SpendLimits, make_server
from metronome import Metronome
from sqlalchemy import select
from standardwebhooks import Webhook

from meterline.delivery.secrets import generate_secret
from meterline.delivery.signing import signed_headers
from meterline.guard import AccessGuard
from meterline.store.db import Database
from meterline.store.tables import notifications
from tests.support.server import ENGINE_IN_THREADS, RunningServer, free_port, start_server
from tests.support.waiting import wait_for


@pytest.fixture(scope="module")
def meterline(
    backend: str, module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("spend-limits")
    options = {"METERLINE_WEBHOOK_POLL_INTERVAL_S": "0.05"}
    if backend == "postgres":
        options["METERLINE_SECRET_KEY"] = Fernet.generate_key().decode()
    # The example app's workflow is under test, not the engine's processes: they run as threads.
    running = start_server(module_database_url, workdir, **ENGINE_IN_THREADS, **options)
    yield running
    running.stop()


@pytest.fixture
def client(meterline: RunningServer) -> Metronome:
    return Metronome(bearer_token=meterline.token, base_url=meterline.base_url, max_retries=0)


@pytest.fixture
def app_url(meterline: RunningServer, client: Metronome) -> Iterator[str]:
    """The example app, with its access guard, registered with meterline as its webhook endpoint."""
    guard = AccessGuard(meterline.base_url, meterline.token, max_stale_s=10).start()
    app = SpendLimits(client, guard)
    port = free_port()
    server = make_server(app, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app.register(f"http://127.0.0.1:{port}{WEBHOOK_PATH}")
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()
    guard.stop()


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


def test_the_workflow(meterline: RunningServer, client: Metronome, app_url: str) -> None:
    customer = _customer_paying_100_cents_a_call(client)
    limits = f"{app_url}/customers/{customer}/limits"
    first = httpx.post(limits, json={"soft_limit_cents": 5000, "hard_limit_cents": 10000}).json()
    assert (first["soft_limit"], first["hard_limit"], first["status"]) == (5000, 10000, "ok")

    _calls(client, customer, 50)  # 5,000 cents: the soft limit
    notified = wait_for(lambda: _status(app_url, customer), lambda s: len(s["notices"]) == 1)
    assert notified["access"] == "allowed"
    assert (notified["notices"][0]["spend"], notified["notices"][0]["percent_used"]) == (5000, 100)

    _calls(client, customer, 50)  # 10,000 cents: the hard limit
    blocked = wait_for(lambda: _status(app_url, customer), lambda s: s["access"] == "blocked")
    assert blocked["reasons"] == ["hard_limit_reached"]
    assert blocked["limits"]["status"] == "hard_limit_reached" and blocked["limits"]["current_spend"] == 10000

    raised = httpx.post(limits, json={"hard_limit_cents": 20000}).json()  # the soft limit stays
    assert raised["soft_limit_alert_id"] == first["soft_limit_alert_id"]
    assert raised["hard_limit_alert_id"] != first["hard_limit_alert_id"]
    restored = wait_for(lambda: _status(app_url, customer), lambda s: s["access"] == "allowed")
    assert restored["limits"]["hard_limit"] == 20000 and restored["reasons"] == []

    # At least once: the soft notice sent again (same id) changes nothing.
    [soft] = [
        n
        for n in _outbox(meterline.database_url)
        if n["properties"]["alert_id"] == first["soft_limit_alert_id"]
    ]
    httpx.post(
        f"{meterline.base_url}/v1/webhooks/deliveries/replay",
        headers=meterline.headers(),
        json={"notification_id": soft["id"]},
    )
    wait_for(
        lambda: _deliveries(meterline, notification_id=soft["id"]),
        lambda found: any(d["state"] == "succeeded" and d["attempt_count"] == 2 for d in found),
    )
    assert len(_status(app_url, customer)["notices"]) == 1


def test_runs_of_calls_are_reserved_against_the_hard_limit(
    meterline: RunningServer, client: Metronome, app_url: str
) -> None:
    customer = _customer_paying_100_cents_a_call(client)
    httpx.post(f"{app_url}/customers/{customer}/limits", json={"hard_limit_cents": 10000})
    runs = f"{app_url}/customers/{customer}/calls"

    first = httpx.post(runs, json={"count": 60})  # 6,000 cents held, then spent once counted
    assert first.status_code == 200 and first.json()["remaining"] == 4000
    # Held or already spent, the first run's 6,000 leave 4,000: a run of 50 would pass the limit.
    refused = httpx.post(runs, json={"count": 50})
    assert refused.status_code == 402
    assert refused.json() == {
        "message": "50 calls would pass the hard spend limit",
        "reason": "would_pass_hard_limit",
        "remaining": 4000,
    }
    last = httpx.post(runs, json={"count": 40})
    assert last.status_code == 200 and last.json()["remaining"] == 0
    blocked = wait_for(lambda: _status(app_url, customer), lambda s: s["access"] == "blocked")
    assert blocked["limits"]["current_spend"] == 10000  # exactly the limit: never past it
    after = httpx.post(
        f"{meterline.base_url}/v1/access/release",
        headers=meterline.headers(),
        json={"reservation_id": last.json()["reservation_id"]},
    )
    assert after.json()["data"]["status"] == "settled"  # by the run's last call, once counted
    assert httpx.post(runs, json={"count": 0}).status_code == 400


def _signed(secret: str, kind: str, alert_id: str, timestamp: str) -> tuple[bytes, dict[str, str]]:
    notification_id = str(uuid.uuid4())
    body = json.dumps(
        {"id": notification_id, "type": kind, "properties": {"alert_id": alert_id, "timestamp": timestamp}}
    ).encode()
    return body, signed_headers([secret], notification_id, int(time.time()), body)


def test_duplicates_and_forgeries_are_ignored() -> None:
    guard = AccessGuard("http://127.0.0.1:9", "unused")  # never started: nothing here asks it
    app = SpendLimits(Metronome(bearer_token="unused", base_url="http://127.0.0.1:9"), guard)
    secret = generate_secret()
    app.verifier = Webhook(secret)
    app.soft_alerts["soft-1"] = "acme"
    notice = _signed(secret, SOFT_NOTICE, "soft-1", "2026-01-01T10:00:00Z")

    assert app.receive(*notice) == 204
    assert app.receive(*notice) == 204  # the same id again: already handled
    assert len(app.notices["acme"]) == 1
    forged = _signed(generate_secret(), SOFT_NOTICE, "soft-1", "2026-01-01T12:00:00Z")
    assert app.receive(*forged) == 400
    other = _signed(secret, SOFT_NOTICE, "someone-else", "2026-01-01T12:00:00Z")
    assert app.receive(*other) == 204 and len(app.notices["acme"]) == 1


def test_changing_one_limit_keeps_the_other_alert(
    meterline: RunningServer, client: Metronome, app_url: str
) -> None:
    """Changing only the soft limit keeps the hard one's alert, and the reverse."""
    customer = _customer_paying_100_cents_a_call(client)
    limits = f"{app_url}/customers/{customer}/limits"
    first = httpx.post(limits, json={"soft_limit_cents": 5000, "hard_limit_cents": 10000}).json()
    _calls(client, customer, 60)  # past the soft limit, short of the hard one
    wait_for(lambda: _status(app_url, customer), lambda s: len(s["notices"]) == 1)

    lowered = httpx.post(limits, json={"soft_limit_cents": 4000}).json()
    assert lowered["hard_limit_alert_id"] == first["hard_limit_alert_id"]
    assert lowered["soft_limit_alert_id"] != first["soft_limit_alert_id"]
    # The new soft limit (4000) is already passed: its notice is the second, and the last.
    notices = wait_for(lambda: _status(app_url, customer)["notices"], lambda n: len(n) == 2)
    assert notices[1]["spend"] == 6000
    assert _status(app_url, customer)["access"] == "allowed"

    refused = httpx.post(limits, json={"soft_limit_cents": 20000})
    assert refused.status_code == 400
    assert refused.json() == {"message": "soft_limit: must be at most hard_limit (10000), not 20000"}
    assert httpx.post(limits, json={"hard_limit_cents": -5}).status_code == 400


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
        assert (answer.status_code, answer.json()) == (
            404,
            {"message": "customer_id: no customer with id nobody"},
        )
    finally:
        running.terminate()
        running.wait(10)

    unreachable = _run_app(meterline.token, free_port(), METERLINE_PORT=str(free_port()))
    _out, err = unreachable.communicate(timeout=60)
    assert unreachable.returncode == 1
    assert "cannot reach meterline at http://127.0.0.1:" in err and "--meterline-url" in err
