"""What webhook delivery costs: the dispatcher draining a backlog, against a bare HTTP client.

A burst of threshold crossings is a backlog of notifications for the dispatcher; how fast it
drains one is what alert latency waits on once the evaluator has committed. This writes
`--webhooks` notifications into the outbox of a fresh SQLite database with one endpoint (a
receiver on 127.0.0.1 in its own process, answering 200 at once), starts the dispatcher alone,
and times it until the receiver has every webhook: fan-out, claims, signing, sending, recording.

The baseline, measured in the same run against the same receiver: a bare client posting the same
number of bodies of the same size at the same concurrency, and nothing else (aiohttp, which the
dispatcher uses; `--baseline-client httpx` measures the client it used before). The ratio says
what the dispatcher's bookkeeping costs on top of HTTP itself.

    python bench/dispatcher_cost.py [--webhooks 3000] [--concurrency 16] [--baseline-client httpx]

`--bookkeeping` times, instead, the database work a burst's webhooks cost, in thread CPU per
webhook (the median of `--repeats` fresh databases), with no HTTP: the evaluator's hand-over in
its batch transaction (`hand_over`: the deliveries fanned out and claimed), the delivery
process's read of the claim (`read`) and its recording of the attempts, all answered 200
(`record`).

    python bench/dispatcher_cost.py --bookkeeping [--webhooks 3000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bare_client import post_all
from bench.receiver import Receiver
from meterline.delivery import endpoints, retry, sender
from meterline.delivery.dispatcher import Dispatcher
from meterline.delivery.handoff import RemoteOutbox
from meterline.delivery.secrets import SecretBox
from meterline.domain.ids import new_id
from meterline.domain.timeutil import now_us
from meterline.logging import configure_logging
from meterline.store import alerts
from meterline.store import webhooks as webhook_store
from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head

console = Console(stderr=True)
WAIT_S = 120.0


def backlog(db: Database, box: SecretBox, url: str, webhooks: int) -> int:
    """One endpoint and `webhooks` outbox rows shaped like alert notifications; the body size."""
    with db.write() as conn:
        endpoints.register(conn, box, url, None, None, now_us())
        written = [
            (
                alerts.Notification(
                    new_id(),
                    "alerts.spend_threshold_reached",
                    new_id(),
                    f"customer-{k}",
                    {"customer_id": f"customer-{k}", "alert_name": "soft limit", "threshold": 5000},
                ),
                now_us(),
            )
            for k in range(webhooks)
        ]
        alerts.add_notifications(conn, written)
    with db.read() as conn:
        payloads = alerts.notifications_after(conn, 0, 1)
    return len(payloads[0][1].encode())


def dispatcher_run(
    db: Database, box: SecretBox, receiver: Receiver, webhooks: int, concurrency: int
) -> dict[str, float]:
    # The receiver listens on 127.0.0.1, a private address: allowed here, as in the tests.
    dispatcher = Dispatcher(db, box, concurrency_per_endpoint=concurrency, allow_private_networks=True)
    started, cpu = time.perf_counter(), time.process_time()
    dispatcher.start()
    while receiver.received < webhooks and time.perf_counter() - started < WAIT_S:
        time.sleep(0.002)
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    dispatcher.stop()
    return {"webhooks_per_s": receiver.received / elapsed, "cpu_us_per_webhook": cpu_s / webhooks * 1e6}


async def _bare_httpx(url: str, webhooks: int, concurrency: int, body: bytes) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        slots = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with (
                slots,
                client.stream(
                    "POST", url, content=body, headers={"content-type": "application/json"}
                ) as answer,
            ):
                await answer.aread()

        await asyncio.gather(*(one() for _ in range(webhooks)))


def baseline_run(url: str, webhooks: int, concurrency: int, body_bytes: int, client: str) -> dict[str, float]:
    body = b"{" + b" " * max(0, body_bytes - 2) + b"}"
    started, cpu = time.perf_counter(), time.process_time()
    if client == "httpx":
        asyncio.run(_bare_httpx(url, webhooks, concurrency, body))
    else:
        asyncio.run(post_all(url, [body] * webhooks, concurrency))
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return {"webhooks_per_s": webhooks / elapsed, "cpu_us_per_webhook": cpu_s / webhooks * 1e6}


def bookkeeping_run(webhooks: int) -> dict[str, float]:
    """Thread CPU seconds of the hand-over, the claim's read and the recording, on a fresh database."""
    box = SecretBox([Fernet.generate_key().decode()])
    with tempfile.TemporaryDirectory() as workdir:
        db = Database(f"sqlite:///{Path(workdir) / 'dispatch.db'}", durable_commits=False)
        upgrade_to_head(db)
        backlog(db, box, "http://127.0.0.1:9/", webhooks)
        outbox = RemoteOutbox(_NoChannel(), timeout_s=10.0)
        with db.write() as conn:
            now = now_us()
            started = time.thread_time()
            (taken,) = outbox.claim_in(conn, now)  # as the evaluator's batch does: fan out, claim
            handed = time.thread_time()
        with db.read() as conn:
            reading = time.thread_time()
            claims = webhook_store.claims_by_id(conn, taken.claim_id, now)
            read = time.thread_time()
        answer = sender.Response(200, 3, None, None, None, '{"content-type": "text/plain"}')
        decision = retry.outcome(
            200, None, attempts_in_round=1, first_attempt_at_us=now, attempted_at_us=now, jitter=0.5
        )
        finished = [(claim, answer, now, decision) for claim in claims]
        dispatcher = Dispatcher(db, box)
        recording = time.thread_time()
        dispatcher._record(finished)
        recorded = time.thread_time()
        db.dispose()
    if len(claims) != webhooks:
        raise SystemExit(f"claimed {len(claims)} of {webhooks}")
    return {
        "hand_over": handed - started,
        "read": read - reading,
        "record": recorded - recording,
    }


class _NoChannel:
    def send_claim(self, claim_id: str) -> None:
        pass


def bookkeeping(webhooks: int, repeats: int) -> None:
    runs = [bookkeeping_run(webhooks) for _ in range(repeats)]
    result: dict[str, object] = {"webhooks": webhooks, "repeats": repeats}
    for part in runs[0]:
        result[f"{part}_cpu_us_per_webhook"] = round(
            statistics.median(r[part] for r in runs) / webhooks * 1e6, 1
        )
    console.print(", ".join(f"{k} {v}" for k, v in result.items()))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--webhooks", type=int, default=3000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="requests in flight per endpoint (default 16, as the server)",
    )
    parser.add_argument("--baseline-client", choices=["aiohttp", "httpx"], default="aiohttp")
    parser.add_argument(
        "--bookkeeping",
        action="store_true",
        help="time the hand-over, the claim's read and the recording (thread CPU), no HTTP",
    )
    parser.add_argument("--repeats", type=int, default=5, help="with --bookkeeping: fresh databases timed")
    args = parser.parse_args()
    configure_logging("warning")
    if args.bookkeeping:
        bookkeeping(args.webhooks, args.repeats)
        return
    box = SecretBox([Fernet.generate_key().decode()])
    with tempfile.TemporaryDirectory() as workdir:
        # Opened as the engine's processes open it (their commits do not wait for the disk).
        db = Database(f"sqlite:///{Path(workdir) / 'dispatch.db'}", durable_commits=False)
        upgrade_to_head(db)
        receiver = Receiver()
        try:
            body_bytes = backlog(db, box, receiver.url, args.webhooks)
            console.print(f"dispatcher: draining {args.webhooks:,} notifications ({body_bytes} bytes each)")
            measured = dispatcher_run(db, box, receiver, args.webhooks, args.concurrency)
        finally:
            receiver.stop()
            db.dispose()
    sink = Receiver()
    try:
        console.print(
            f"baseline: {args.baseline_client} posting {args.webhooks:,} bodies of {body_bytes} bytes"
        )
        baseline = baseline_run(sink.url, args.webhooks, args.concurrency, body_bytes, args.baseline_client)
    finally:
        sink.stop()
    result = {
        "webhooks": args.webhooks,
        "concurrency": args.concurrency,
        "baseline_client": args.baseline_client,
        "dispatcher_webhooks_per_s": round(measured["webhooks_per_s"]),
        "dispatcher_cpu_us_per_webhook": round(measured["cpu_us_per_webhook"]),
        "baseline_webhooks_per_s": round(baseline["webhooks_per_s"]),
        "baseline_cpu_us_per_webhook": round(baseline["cpu_us_per_webhook"]),
        "ratio_to_baseline": round(measured["webhooks_per_s"] / baseline["webhooks_per_s"], 3),
    }
    console.print(
        f"dispatcher {result['dispatcher_webhooks_per_s']:,}/s ({result['dispatcher_cpu_us_per_webhook']} µs CPU each), "
        f"bare client {result['baseline_webhooks_per_s']:,}/s ({result['baseline_cpu_us_per_webhook']} µs), "
        f"ratio {result['ratio_to_baseline']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
