"""SIGKILL while usage crosses alert thresholds: every transition is notified exactly once.

A real `meterline serve` on a fresh database, with spend, usage and low-balance alerts whose
thresholds the test's usage crosses one after another, is killed while client threads ingest and
the evaluator is working through the thresholds; restarted on the same database, the clients
re-send what was not acknowledged. Each alert ends with exactly one notification; replaying every
batch adds none.
"""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from metronome import Metronome

from tests.sdk.alert_helpers import add_credit, billed_customer, create_alert, status
from tests.sdk.helpers import hours_ago, rfc3339, settle
from tests.support.outbox import notifications_for
from tests.support.server import RunningServer, start_server
from tests.support.waiting import wait_for

BATCHES = 40
EVENTS_PER_BATCH = 50  # one unit each, priced 1 cent: 2000 cents in all
TOTAL = BATCHES * EVENTS_PER_BATCH
CLIENT_THREADS = 3
PACE_S = 0.02  # between a thread's batches: the evaluator crosses thresholds while ingest goes on
SPEND_THRESHOLDS = range(100, TOTAL + 1, 300)  # 100, 400, ..., 1900
USAGE_THRESHOLDS = (250, 1250, TOTAL)
CREDIT = 1500  # drawn down by the usage; the low-balance alert fires at 500 left (1000 spent)

pytestmark = pytest.mark.slow


def sdk(server: RunningServer) -> Metronome:
    return Metronome(bearer_token=server.token, base_url=server.base_url, max_retries=0)


class Ingester:
    """Client threads sending the numbered batches once each, recording which were acknowledged."""

    def __init__(self, server: RunningServer, customer_id: str, event_type: str) -> None:
        self.server = server
        self.customer_id = customer_id
        self.event_type = event_type
        self.prefix = uuid.uuid4().hex[:10]
        self.timestamp = rfc3339(hours_ago(0))
        self.lock = threading.Lock()
        self.next_batch = 0
        self.acked: set[int] = set()
        self.refused: list[str] = []
        self.threads = [threading.Thread(target=self._run) for _ in range(CLIENT_THREADS)]

    def batch(self, number: int) -> list[dict[str, Any]]:
        return [
            {
                "transaction_id": f"{self.prefix}-{number}-{i}",
                "customer_id": self.customer_id,
                "event_type": self.event_type,
                "timestamp": self.timestamp,
                "properties": {"qty": 1},
            }
            for i in range(EVENTS_PER_BATCH)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in self.threads)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.base_url, headers=self.server.headers(), timeout=30) as http:
            while True:
                with self.lock:
                    number = self.next_batch
                    if number >= BATCHES:
                        return
                    self.next_batch += 1
                try:
                    response = http.post("/v1/ingest", json=self.batch(number))
                except httpx.TransportError:
                    return  # the server is gone; this batch is in doubt
                with self.lock:
                    if response.status_code == 200:
                        self.acked.add(number)
                    else:
                        self.refused.append(f"{response.status_code} {response.text}")
                time.sleep(PACE_S)


def test_sigkill_while_crossing_thresholds_notifies_each_transition_once(
    own_database_url: str, tmp_path: Path
) -> None:
    server = start_server(own_database_url, tmp_path)
    restarted: RunningServer | None = None
    try:
        client = sdk(server)
        customer_id, usage = billed_customer(client, price=1)
        add_credit(client, customer_id, CREDIT)
        alerts: dict[str, tuple[str, Decimal]] = {}  # alert id -> (measure, threshold)
        for threshold in SPEND_THRESHOLDS:
            alert_id = create_alert(
                client, alert_type="spend_threshold_reached", threshold=threshold, customer_id=customer_id
            )
            alerts[alert_id] = ("current_spend", Decimal(threshold))
        for threshold in USAGE_THRESHOLDS:
            alert_id = create_alert(
                client,
                alert_type="usage_threshold_reached",
                threshold=threshold,
                customer_id=customer_id,
                billable_metric_id=usage.metric_id,
            )
            alerts[alert_id] = ("current_usage", Decimal(threshold))
        low = create_alert(
            client, alert_type="low_credit_balance_reached", threshold=500, customer_id=customer_id
        )
        alerts[low] = ("remaining_balance", Decimal(500))
        for alert_id in alerts:
            wait_for(
                lambda a=alert_id: status(client, a, customer_id), lambda got: got == ("ok", "alert_created")
            )

        ingester = Ingester(server, customer_id, usage.event_type)
        ingester.start()
        # Kill once the evaluator is partway through the thresholds, while batches are in flight.
        wait_for(
            lambda: (len(notifications_for(own_database_url, customer_id)), len(ingester.acked)),
            lambda progress: progress[0] >= 5 or progress[1] >= BATCHES * 2 // 3,
            timeout_s=30,
            interval_s=0.005,
        )
        server.kill()
        ingester.join()
        assert ingester.refused == []
        in_doubt = sorted(set(range(BATCHES)) - ingester.acked)
        assert in_doubt, "every batch was acknowledged before the kill: nothing was in flight"

        restarted = start_server(own_database_url, tmp_path, token=server.token)
        with httpx.Client(base_url=restarted.base_url, headers=restarted.headers(), timeout=30) as http:
            for number in in_doubt:
                response = http.post("/v1/ingest", json=ingester.batch(number))
                assert response.status_code == 200, response.text
            client = sdk(restarted)
            wait_for(
                lambda: len(notifications_for(own_database_url, customer_id)),
                lambda n: n >= len(alerts),
                timeout_s=30,
            )
            settle(client)
            first = notifications_for(own_database_url, customer_id)
            check_once_each(first, alerts)
            for alert_id in alerts:
                assert status(client, alert_id, customer_id) == ("in_alarm", "usage")

            # Replaying every batch (clients retrying) changes nothing.
            for number in range(BATCHES):
                response = http.post("/v1/ingest", json=ingester.batch(number))
                assert response.status_code == 200, response.text
            settle(client)
            assert notifications_for(own_database_url, customer_id) == first
    finally:
        for running in (restarted, server):
            if running is not None:
                running.stop()


def check_once_each(found: list[dict[str, Any]], alerts: dict[str, tuple[str, Decimal]]) -> None:
    by_alert: dict[str, list[dict[str, Any]]] = {}
    for payload in found:
        by_alert.setdefault(payload["properties"]["alert_id"], []).append(payload)
    assert set(by_alert) == set(alerts)
    for alert_id, (measure, threshold) in alerts.items():
        [fired] = by_alert[alert_id]
        assert not fired["type"].endswith("_resolved")
        value = fired["properties"][measure]
        if measure == "remaining_balance":
            assert 0 <= value <= threshold, fired
        else:
            assert threshold <= value <= TOTAL, fired
