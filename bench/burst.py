"""(e) A burst of simultaneous threshold crossings, and what a bare client needs to deliver as many.

Warm-up (not measured): each customer gets one event fewer than crosses its SOFT threshold, and
the run waits until every event is evaluated. Then one event per customer, each crossing its SOFT
threshold, in batches of 100 posted at once over the connections (closed loop: each connection
sends its next batch as soon as the previous one is answered). Measured: each crossing's latency
(its batch's acknowledgement to the webhook's arrival) and the time from the burst's first
request to the last webhook's arrival. The burst's events are not known to be evaluated while
the webhooks are awaited, so the wait is `--webhook-wait-seconds` whole: a webhook still missing
then counts with the latency it had reached (a lower bound, as in (b)).

The baseline, in the same run once the server is stopped: a bare client posting the same webhook
bodies to a receiver of the same kind, at the dispatcher's concurrency per endpoint, timed from
its first request to the last arrival.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from bench.bare_client import post_all
from bench.bodies import EVENTS_PER_BATCH, Batch
from bench.engines import tree
from bench.latency import Latencies, crossing_acks, match
from bench.loadgen import LoadProcess, encode_request
from bench.machine import OtherWork
from bench.plan import AlertKind, Plan
from bench.receiver import Receiver
from bench.stages import breakdown
from bench.workloads import Session, wait_webhooks, warm_up
from meterline.settings import Settings

CONCURRENCY_SETTING = "webhook_concurrency_per_endpoint"


@dataclass
class BurstRun:
    latencies: Latencies
    started_ns: int  # the burst's first request
    last_arrival_ns: int | None  # None: no webhook arrived
    failures: dict[str, int]
    shared_with: str  # what else used the cores during the burst
    server_cpu_s: float  # CPU the server and its engine processes (evaluator, delivery) used meanwhile
    bodies: list[bytes]  # the webhooks received, for the baseline
    stages: dict[str, Any] | None = None  # `bench.stages.breakdown`, when the server logged for it

    @property
    def delivered_s(self) -> float | None:
        """From the first request of the burst to the last webhook's arrival."""
        if self.last_arrival_ns is None:
            return None
        return (self.last_arrival_ns - self.started_ns) / 1e9


def soft_events(plan: Plan) -> int:
    """Events at which a customer's SOFT threshold is crossed."""
    return plan.events_to_fire(plan.alert(AlertKind.SOFT))


def burst(
    session: Session,
    warmup: Sequence[Batch],
    batches: Sequence[Batch],
    plan: Plan,
    *,
    connections: int,
    webhook_wait_s: float,
    console: Console,
    stages: bool = False,
) -> BurstRun:
    """The warm-up (`soft_events - 1` events per customer) until evaluated, then the burst."""
    warm_up(session, warmup, label="(e) warm-up", connections=connections, rate_per_s=None, console=console)
    port = int(session.server.base_url.rsplit(":", 1)[1])
    requests = [encode_request(port, "/v1/ingest", session.server.token, b.body) for b in batches]
    others = OtherWork()
    with console.status(f"(e) burst: {len(batches) * EVENTS_PER_BATCH:,} crossings posted at once"):
        load = LoadProcess(port, requests, connections=connections, duration_s=None)
        result = load.result()
        crossings = crossing_acks(plan, batches, load.ack_ns, already=soft_events(plan) - 1)
        # The burst's events are not known to be evaluated yet: no quiet rule, the whole wait.
        wait_webhooks(session.receiver, len(crossings), webhook_wait_s, quiet_s=None)
    waited_until_ns = time.time_ns()
    shared_with = others.describe(set(tree(os.getpid())))
    server_cpu_s = others.cpu_seconds(set(tree(session.server.process.pid)))
    arrivals = session.receiver.stop()
    latencies = match(crossings, arrivals, waited_until_ns)
    return BurstRun(
        latencies,
        result.started_ns,
        max((a.arrived_ns for a in arrivals), default=None),
        dict(result.failures),
        shared_with,
        server_cpu_s,
        [a.body for a in arrivals],
        breakdown(session.server.log_path, crossings, arrivals) if stages else None,
    )


def server_concurrency(env: dict[str, str]) -> int:
    """The dispatcher's requests in flight per endpoint, as the server was configured."""
    name = f"METERLINE_{CONCURRENCY_SETTING.upper()}"
    return int(env.get(name) or Settings.model_fields[CONCURRENCY_SETTING].default)


def bare_client_s(bodies: Sequence[bytes], concurrency: int) -> float | None:
    """From a bare client's first request to the last arrival at a fresh receiver."""
    if not bodies:
        return None
    receiver = Receiver()
    try:
        started_ns = time.time_ns()
        asyncio.run(post_all(receiver.url, bodies, concurrency))
    finally:
        arrivals = receiver.stop()
    return (max(a.arrived_ns for a in arrivals) - started_ns) / 1e9


def summary(run: BurstRun, baseline_s: float | None, concurrency: int) -> dict[str, Any]:
    delivered = run.delivered_s
    return {
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in run.latencies.summary().items()},
        "delivered_s": None if delivered is None else round(delivered, 3),
        "bare_client_s": None if baseline_s is None else round(baseline_s, 3),
        "ratio_to_bare_client": (
            round(delivered / baseline_s, 2) if delivered is not None and baseline_s else None
        ),
        "bare_client_concurrency": concurrency,
        "failures": run.failures,
        "server_cpu_s": round(run.server_cpu_s, 2),
        "shared_with": run.shared_with,
        **({"stages": run.stages} if run.stages is not None else {}),
    }
