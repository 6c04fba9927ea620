"""Two `meterline engine` processes on one PostgreSQL, one killed with SIGKILL during a hand-over.

An API server runs with `--no-engine` (its evaluator and webhook delivery off). While clients
ingest usage for many customers, each of which has a spend alert that the usage crosses, a
second engine joins the first, which starts handing it half of the partitions; the first is
killed in the middle of that hand-over. The second takes everything over within twice the lease
time; once ingest ends, every customer's usage is counted exactly (its draft invoice) and every
crossing was notified exactly once.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from metronome import Metronome

from meterline.store import event_log, partitions
from meterline.store.db import Database
from tests.sdk.alert_helpers import billed_customer, create_alert, status
from tests.sdk.helpers import hours_ago, rfc3339
from tests.support.outbox import notifications_for
from tests.support.server import RunningServer, start_engine, start_server, stop_process
from tests.support.waiting import wait_for

LEASE_S = 3.0
CUSTOMERS = 12
BATCHES_PER_CUSTOMER = 8
EVENTS_PER_BATCH = 25  # one unit each at 1 cent: 200 cents per customer
THRESHOLD = 100

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """A PostgreSQL database of the test's own: the engines share it, as on several machines."""
    return postgres_url


def start(database_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    return start_engine(
        database_url,
        log_path,
        METERLINE_ENGINE_LEASE_S=str(LEASE_S),
        METERLINE_WEBHOOKS_ENABLED="false",
        METERLINE_LOG_LEVEL="info",
    )


def owners(database_url: str) -> dict[str | None, int]:
    db = Database(database_url, pool_size=1)
    try:
        with db.read() as conn:
            return partitions.holders(conn)
    finally:
        db.dispose()


def fully_evaluated(database_url: str) -> bool:
    db = Database(database_url, pool_size=1)
    try:
        with db.read() as conn:
            return min(partitions.positions(conn).values()) >= event_log.last_seq(conn)
    finally:
        db.dispose()


def test_a_killed_engine_is_taken_over_with_counts_exact_and_each_crossing_notified_once(
    database_url: str, tmp_path: Path
) -> None:
    api: RunningServer = start_server(
        database_url, tmp_path, METERLINE_EVALUATOR_ENABLED="false", METERLINE_WEBHOOKS_ENABLED="false"
    )
    engines = [start(database_url, tmp_path / "engine-0.log")]
    try:
        client = Metronome(bearer_token=api.token, base_url=api.base_url, max_retries=0)
        wait_for(lambda: owners(database_url), lambda o: None not in o and len(o) == 1, timeout_s=90)
        billed: list[tuple[str, str, str]] = []  # (customer, event type, alert)
        for _ in range(CUSTOMERS):
            customer_id, usage = billed_customer(client, price=1)
            alert_id = create_alert(
                client, alert_type="spend_threshold_reached", threshold=THRESHOLD, customer_id=customer_id
            )
            billed.append((customer_id, usage.event_type, alert_id))
        for customer_id, _type, alert_id in billed:
            wait_for(lambda c=customer_id, a=alert_id: status(client, a, c), lambda s: s[0] == "ok")

        timestamp = rfc3339(hours_ago(0))
        batches = [
            [
                {
                    "transaction_id": f"{customer_id}-{b}-{i}-{uuid.uuid4().hex[:4]}",
                    "customer_id": customer_id,
                    "event_type": event_type,
                    "timestamp": timestamp,
                    "properties": {"qty": 1},
                }
                for i in range(EVENTS_PER_BATCH)
            ]
            for b in range(BATCHES_PER_CUSTOMER)
            for customer_id, event_type, _alert in billed
        ]
        sent = threading.Event()
        joined = threading.Event()
        failures: list[str] = []

        def ingest() -> None:
            with httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as http:
                for number, batch in enumerate(batches):
                    if number == len(batches) // 4:
                        joined.wait(120)  # the rest goes in while the engines hand over
                    response = http.post("/v1/ingest", json=batch)
                    if response.status_code != 200:
                        failures.append(response.text)
                    time.sleep(0.02)
            sent.set()

        ingester = threading.Thread(target=ingest)
        ingester.start()
        engines.append(start(database_url, tmp_path / "engine-1.log"))  # (starting takes seconds)
        wait_for(lambda: owners(database_url), lambda o: len([k for k in o if k]) == 2, timeout_s=90)
        joined.set()
        time.sleep(0.2)
        victim = engines[0]  # handing partitions over, mid-load
        assert not sent.is_set()
        victim.kill()
        killed_at = time.monotonic()
        victim.wait(10)
        wait_for(lambda: owners(database_url), lambda o: len([k for k in o if k]) == 1, timeout_s=4 * LEASE_S)
        take_over_s = time.monotonic() - killed_at
        assert take_over_s <= 2 * LEASE_S, take_over_s
        ingester.join(60)
        assert sent.is_set() and failures == []

        wait_for(lambda: fully_evaluated(database_url), bool, timeout_s=30)
        for customer_id, _type, alert_id in billed:
            now = rfc3339(hours_ago(0))
            [invoice] = [
                i
                for i in client.v1.customers.invoices.list(customer_id=customer_id).data
                if rfc3339(i.start_timestamp) <= now < rfc3339(i.end_timestamp)
            ]
            assert Decimal(str(invoice.subtotal)) == BATCHES_PER_CUSTOMER * EVENTS_PER_BATCH
            assert status(client, alert_id, customer_id)[0] == "in_alarm"
            fired: list[dict[str, Any]] = notifications_for(database_url, customer_id)
            assert [n["properties"]["alert_id"] for n in fired] == [alert_id]
    finally:
        for engine in engines:
            stop_process(engine, 20)
        api.stop()
