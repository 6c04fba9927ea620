"""Ingest throughput of a real `meterline serve` process, against the floor of the same machine.

Starts meterline on a fresh SQLite file (or METERLINE_DATABASE_URL), creates customers and a
COUNT metric, then a separate load-generator process posts pre-built batches of 100 events
(uuid4 transaction ids) over keep-alive connections for the given duration. Reports events/s
acknowledged, events/s acknowledged *and evaluated* (until usage shows every acked event), and,
as the baseline measured in the same run, the floor: the same bodies parsed and appended to a
fresh database of the same kind with the same dedup index by one in-process writer, nothing else.

    python bench/ingest_load.py [--seconds 10] [--connections 16] [--customers 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.server import start_server

from meterline.api.ingest_parsing import parse_batch
from meterline.domain.events import IngestLimits
from meterline.domain.timeutil import now_us
from meterline.store import event_log
from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head

console = Console(stderr=True)
EVENTS_PER_BATCH = 100


def build_bodies(customers: list[str], count: int) -> list[bytes]:
    stamp = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        json.dumps(
            [
                {
                    "transaction_id": str(uuid.uuid4()),
                    "customer_id": customers[(b * EVENTS_PER_BATCH + i) % len(customers)],
                    "event_type": "api_call",
                    "timestamp": stamp,
                    "properties": {"tokens": 100 + i, "region": "eu"},
                }
                for i in range(EVENTS_PER_BATCH)
            ]
        ).encode()
        for b in range(count)
    ]


def load_process(
    base_url: str,
    token: str,
    bodies: list[bytes],
    connections: int,
    seconds: float,
    out: multiprocessing.Queue[int],
) -> None:
    async def run() -> int:
        acked = 0
        index = 0
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=30) as client:

            async def worker() -> None:
                nonlocal acked, index
                while time.monotonic() < deadline and index < len(bodies):
                    body = bodies[index]
                    index += 1
                    response = await client.post("/v1/ingest", content=body)
                    if response.status_code == 200:
                        acked += EVENTS_PER_BATCH

            await asyncio.gather(*(worker() for _ in range(connections)))
        return acked

    out.put(asyncio.run(run()))


def floor(database_url: str | None, bodies: list[bytes], seconds: float) -> float:
    """Parse + durable deduplicated append of the same bodies, grouped 16 requests per commit."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(database_url or f"sqlite:///{tmp}/floor.db")
        upgrade_to_head(db)
        limits = IngestLimits()
        done = 0
        started = time.perf_counter()
        for start in range(0, len(bodies), 16):
            group = bodies[start : start + 16]
            with db.write() as conn:
                for body in group:
                    done += event_log.append(conn, parse_batch(body, now_us(), limits), now_us())
            if time.perf_counter() - started > seconds:
                break
        elapsed = time.perf_counter() - started
        db.dispose()
    return done / elapsed


def setup_billing(client: httpx.Client, metric_id: str, aliases: list[str]) -> None:
    """Workload (a) of the benchmarks: a tiered rate, a commit and 3 alerts per customer."""
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0).isoformat()
    product = client.post(
        "/v1/contract-pricing/products/create",
        json={"name": "Calls", "type": "USAGE", "billable_metric_id": metric_id},
    ).json()["data"]["id"]
    fixed = client.post(
        "/v1/contract-pricing/products/create", json={"name": "Commit", "type": "FIXED"}
    ).json()["data"]["id"]
    card = client.post("/v1/contract-pricing/rate-cards/create", json={"name": "bench"}).json()["data"]["id"]
    client.post(
        "/v1/contract-pricing/rate-cards/addRate",
        json={
            "rate_card_id": card,
            "product_id": product,
            "entitled": True,
            "rate_type": "TIERED",
            "starting_at": month,
            "tiers": [{"price": 2, "size": 1000}, {"price": 1}],
        },
    ).raise_for_status()
    for alias in aliases:
        customer = client.get("/v1/customers", params={"ingest_alias": alias}).json()["data"][0]["id"]
        client.post(
            "/v1/contracts/create",
            json={
                "customer_id": customer,
                "rate_card_id": card,
                "starting_at": month,
                "commits": [
                    {
                        "type": "PREPAID",
                        "product_id": fixed,
                        "access_schedule": {
                            "schedule_items": [
                                {
                                    "amount": 50_000,
                                    "starting_at": month,
                                    "ending_before": "2099-01-01T00:00:00Z",
                                }
                            ]
                        },
                    }
                ],
            },
        ).raise_for_status()
        for name, alert_type, threshold in (
            ("soft", "spend_threshold_reached", 5_000),
            ("hard", "spend_threshold_reached", 10_000),
            ("low commit", "low_remaining_commit_balance_reached", 1_000),
        ):
            client.post(
                "/v1/alerts/create",
                json={
                    "customer_id": customer,
                    "name": name,
                    "alert_type": alert_type,
                    "threshold": threshold,
                },
            ).raise_for_status()


def _start_profiler(pid: int, svg_path: str) -> subprocess.Popen[bytes]:
    """py-spy (pip install py-spy) sampling the server while the load runs."""
    return subprocess.Popen(
        [
            "py-spy",
            "record",
            "-p",
            str(pid),
            "-o",
            svg_path,
            "-f",
            "speedscope" if svg_path.endswith(".json") else "flamegraph",
        ]
    )


def usage_total(client: httpx.Client, metric_id: str) -> int:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    body = {
        "starting_on": (hour - timedelta(hours=2)).isoformat(),
        "ending_before": (hour + timedelta(hours=1)).isoformat(),
        "window_size": "NONE",
        "billable_metrics": [{"id": metric_id}],
    }
    total = 0
    next_page = None
    while True:
        page = client.post(
            "/v1/usage", json=body, params={"next_page": next_page} if next_page else None
        ).json()
        total += sum(int(row["value"] or 0) for row in page["data"])
        next_page = page["next_page"]
        if not next_page:
            return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--profile", help="write a py-spy flame graph of the server to this SVG path")
    parser.add_argument(
        "--billing", action="store_true", help="give each customer a contract, a commit and 3 alerts"
    )
    args = parser.parse_args()
    database_url = os.environ.get("METERLINE_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.db"
        server = start_server(url, Path(tmp), METERLINE_LOG_LEVEL="warning")
        try:
            client = httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60)
            aliases = [f"bench-{i}" for i in range(args.customers)]
            console.print(f"creating {args.customers} customers")
            for alias in aliases:
                client.post(
                    "/v1/customers", json={"name": alias, "ingest_aliases": [alias]}
                ).raise_for_status()
            metric = client.post(
                "/v1/billable-metrics/create", json={"name": "calls", "aggregation_type": "COUNT"}
            ).json()["data"]["id"]
            if args.billing:
                console.print("creating a tiered rate, a contract with a commit and 3 alerts per customer")
                setup_billing(client, metric, aliases)
            bodies = build_bodies(aliases, int(args.seconds * 3000))
            profiler = _start_profiler(server.process.pid, args.profile) if args.profile else None
            console.print(f"posting for {args.seconds:.0f}s over {args.connections} connections")
            results: multiprocessing.Queue[int] = multiprocessing.Queue()
            started = time.perf_counter()
            loader = multiprocessing.Process(
                target=load_process,
                args=(server.base_url, server.token, bodies, args.connections, args.seconds, results),
            )
            loader.start()
            acked = results.get()
            ack_elapsed = time.perf_counter() - started
            loader.join()
            console.print("waiting for the evaluator to count every acked event")
            while usage_total(client, metric) < acked:
                time.sleep(0.05)
            evaluated_elapsed = time.perf_counter() - started
            if profiler is not None:
                profiler.send_signal(2)
                profiler.wait(30)
        finally:
            server.stop()
    floor_rate = floor(database_url, bodies, args.seconds)
    acked_rate = acked / ack_elapsed
    evaluated_rate = acked / evaluated_elapsed
    print(
        json.dumps(
            {
                "events_acked": acked,
                "acked_events_per_s": round(acked_rate),
                "evaluated_events_per_s": round(evaluated_rate),
                "floor_events_per_s": round(floor_rate),
                "ratio_to_floor": round(evaluated_rate / floor_rate, 3),
                "customers": args.customers,
                "connections": args.connections,
                "database": "postgresql" if database_url else "sqlite",
                "billing": args.billing,
            }
        )
    )


if __name__ == "__main__":
    main()
