"""SIGKILL mid-ingest loses nothing acknowledged and, once clients re-send what was not
acknowledged, usage counts every distinct event exactly once.

A real `meterline serve` process on a fresh database is killed while client threads ingest as
fast as they can, then restarted on the same database with the same token.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from meterline.domain.timeutil import US_PER_HOUR, format_rfc3339, now_us
from tests.support.server import RunningServer, start_server
from tests.support.waiting import wait_for

EVENTS_PER_BATCH = 50
CLIENT_THREADS = 4
INGEST_BEFORE_KILL_S = 1.0

pytestmark = pytest.mark.slow


def client(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30)


class Ingester:
    """Client threads sending batches of unique events, recording which were acknowledged."""

    def __init__(self, server: RunningServer, alias: str, prefix: str, timestamp: str) -> None:
        self.server = server
        self.alias = alias
        self.prefix = prefix
        self.timestamp = timestamp
        self.lock = threading.Lock()
        self.attempted: dict[int, list[dict[str, Any]]] = {}
        self.acked: set[int] = set()
        self.refused: list[str] = []
        self.next_batch = 0
        self.threads = [threading.Thread(target=self._run) for _ in range(CLIENT_THREADS)]

    def batch(self, number: int) -> list[dict[str, Any]]:
        return [
            {
                "transaction_id": f"{self.prefix}-{number}-{i}",
                "customer_id": self.alias,
                "event_type": "crash_test",
                "timestamp": self.timestamp,
                "properties": {"batch": number, "i": i},
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
        with client(self.server) as http:
            while True:
                with self.lock:
                    number = self.next_batch
                    self.next_batch += 1
                    self.attempted[number] = self.batch(number)
                try:
                    response = http.post("/v1/ingest", json=self.attempted[number])
                except httpx.TransportError:
                    return  # the server is gone; this batch is in doubt
                with self.lock:
                    if response.status_code == 200:
                        self.acked.add(number)
                    else:
                        self.refused.append(f"{response.status_code} {response.text}")


def count_usage(http: httpx.Client, customer_id: str, metric_id: str, hour_us: int) -> int | None:
    response = http.post(
        "/v1/usage",
        json={
            "starting_on": format_rfc3339(hour_us),
            "ending_before": format_rfc3339(hour_us + US_PER_HOUR),
            "window_size": "NONE",
            "customer_ids": [customer_id],
            "billable_metrics": [{"id": metric_id}],
        },
    )
    assert response.status_code == 200, response.text
    (row,) = response.json()["data"]
    return None if row["value"] is None else int(row["value"])


def found(http: httpx.Client, transaction_ids: list[str]) -> set[str]:
    present: set[str] = set()
    for start in range(0, len(transaction_ids), 100):
        response = http.post(
            "/v1/events/search", json={"transactionIds": transaction_ids[start : start + 100]}
        )
        assert response.status_code == 200, response.text
        present |= {event["transaction_id"] for event in response.json()}
    return present


def test_sigkill_mid_ingest_loses_no_ack_and_counts_each_event_once(
    own_database_url: str, tmp_path: Path
) -> None:
    server = start_server(own_database_url, tmp_path)
    restarted: RunningServer | None = None
    try:
        prefix = uuid.uuid4().hex[:10]
        alias = f"crash-{prefix}"
        with client(server) as http:
            customer = http.post("/v1/customers", json={"name": "Crash Test", "ingest_aliases": [alias]})
            assert customer.status_code == 200, customer.text
            customer_id = customer.json()["data"]["id"]
            metric_id = counting_metric(http, f"crash events {prefix}")

        ts_us = now_us()
        hour_us = ts_us - ts_us % US_PER_HOUR
        ingester = Ingester(server, alias, prefix, format_rfc3339(ts_us))
        ingester.start()
        time.sleep(INGEST_BEFORE_KILL_S)
        # At least a few batches acknowledged first, however busy the machine is.
        wait_for(lambda: len(ingester.acked), lambda n: n >= 5, timeout_s=60)
        server.kill()
        ingester.join()
        assert ingester.refused == []
        acked = sorted(ingester.acked)
        in_doubt = sorted(set(ingester.attempted) - ingester.acked)
        assert len(acked) >= 5, "too few batches acknowledged before the kill to test anything"

        restarted = start_server(own_database_url, tmp_path, token=server.token)
        with client(restarted) as http:
            # Every acknowledged event survived the kill.
            acked_ids = [e["transaction_id"] for n in acked for e in ingester.attempted[n]]
            missing = set(acked_ids) - found(http, acked_ids)
            assert not missing, f"{len(missing)} acknowledged events were lost"

            # Clients re-send what was not acknowledged, and (harmlessly) some of what was.
            resent = in_doubt + acked[:3] + acked[-3:]
            for number in resent:
                response = http.post("/v1/ingest", json=ingester.attempted[number])
                assert response.status_code == 200, response.text

            total = len(ingester.attempted) * EVENTS_PER_BATCH
            wait_for(
                lambda: count_usage(http, customer_id, metric_id, hour_us),
                lambda value: value is not None and value >= total,
                timeout_s=30,
            )
            time.sleep(0.5)  # let any (wrong) extra counting show
            assert count_usage(http, customer_id, metric_id, hour_us) == total
            every_id = [e["transaction_id"] for batch in ingester.attempted.values() for e in batch]
            assert len(found(http, every_id)) == total
    finally:
        for running in (restarted, server):
            if running is not None:
                running.stop()


SPREAD_CUSTOMERS = 30


def journaling_server(
    database_url: str, workdir: Path, token: str | None = None, max_deltas: int = 1_000_000
) -> RunningServer:
    """A batch of one event for each of many customers journals its usage (`engine.usage_deferral`),
    and the journal is never merged by age while a test runs, nor by size below `max_deltas` (at
    it, merged into the open hours' rows). The engine runs in the server's process, so that
    SIGKILL ends it too (an engine process whose server dies stops cleanly, which merges the
    journal)."""
    return start_server(
        database_url,
        workdir,
        token=token,
        METERLINE_ENGINE_PROCESS="false",
        METERLINE_ENGINE_USAGE_JOURNAL_MIN_ROWS="1",
        METERLINE_ENGINE_USAGE_JOURNAL_MAX_AGE_S="3600",
        METERLINE_ENGINE_USAGE_JOURNAL_MAX_DELTAS=str(max_deltas),
    )


def spread_events(aliases: list[str], round_: str, timestamp: str) -> list[dict[str, Any]]:
    return [
        {
            "transaction_id": f"{round_}-{alias}",
            "customer_id": alias,
            "event_type": "crash_test",
            "timestamp": timestamp,
            "properties": {},
        }
        for alias in aliases
    ]


def rows_in(sqlite_url: str, table: str) -> int:
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(count)


@pytest.mark.parametrize(
    ("max_deltas", "holding"),
    [
        (1_000_000, "usage_journal"),  # journaled, not yet merged
        (SPREAD_CUSTOMERS, "usage_hourly_open"),  # merged into the open hour's rows, no month's yet
    ],
)
def test_sigkill_with_usage_in_the_journal_counts_each_event_once(
    own_database_url: str, tmp_path: Path, max_deltas: int, holding: str
) -> None:
    """Usage journaled, or merged into the open hour's rows and not yet sealed, when the process
    dies is read after the restart, counted once, and the events after it add to it; a re-sent
    batch adds nothing."""
    server = journaling_server(own_database_url, tmp_path, max_deltas=max_deltas)
    restarted: RunningServer | None = None
    try:
        prefix = uuid.uuid4().hex[:10]
        aliases = [f"spread-{prefix}-{n}" for n in range(SPREAD_CUSTOMERS)]
        ts_us = now_us()
        hour_us = ts_us - ts_us % US_PER_HOUR
        with client(server) as http:
            metric_id = counting_metric(http, f"spread events {prefix}")
            customer_ids = []
            for alias in aliases:
                created = http.post("/v1/customers", json={"name": alias, "ingest_aliases": [alias]})
                assert created.status_code == 200, created.text
                customer_ids.append(created.json()["data"]["id"])
            first = spread_events(aliases, f"first-{prefix}", format_rfc3339(ts_us))
            assert http.post("/v1/ingest", json=first).status_code == 200
            for customer_id in customer_ids:
                wait_for(
                    lambda c=customer_id: count_usage(http, c, metric_id, hour_us),  # type: ignore[misc]
                    lambda value: value == 1,
                    timeout_s=30,
                )
        server.kill()
        if own_database_url.startswith("sqlite"):  # (PostgreSQL merges every batch)
            assert rows_in(own_database_url, holding) > 0, f"nothing was in {holding} at the kill"

        restarted = journaling_server(own_database_url, tmp_path, token=server.token, max_deltas=max_deltas)
        with client(restarted) as http:
            second = spread_events(aliases, f"second-{prefix}", format_rfc3339(ts_us))
            for batch in (second, first):  # the first round again: duplicates, counted nowhere
                assert http.post("/v1/ingest", json=batch).status_code == 200
            for customer_id in customer_ids:
                wait_for(
                    lambda c=customer_id: count_usage(http, c, metric_id, hour_us),  # type: ignore[misc]
                    lambda value: value is not None and value >= 2,
                    timeout_s=30,
                )
            time.sleep(0.5)  # let any (wrong) extra counting show
            assert [count_usage(http, c, metric_id, hour_us) for c in customer_ids] == [2] * SPREAD_CUSTOMERS
    finally:
        for running in (restarted, server):
            if running is not None:
                running.stop()


def counting_metric(http: httpx.Client, name: str) -> str:
    """A COUNT metric of the crash tests' events; its id."""
    metric = http.post(
        "/v1/billable-metrics/create",
        json={"name": name, "aggregation_type": "COUNT", "event_type_filter": {"in_values": ["crash_test"]}},
    )
    assert metric.status_code == 200, metric.text
    found: str = metric.json()["data"]["id"]
    return found
