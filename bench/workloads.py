"""The workloads against one running server: (a) throughput and (b) alert latency.

(a) Closed loop for a fixed duration: acknowledged events/s, and events/s acknowledged AND
evaluated (the time until the evaluator has processed every acknowledged event).
(b) Open loop at a given rate (a share of (a)'s), after a warm-up at that rate: for each
threshold crossed in the measured phase, the time from the acknowledgement that crosses it to
the webhook's arrival at the receiver.

While the load runs, a sample of the acknowledged events is looked up every `POLL_S` seconds to
draw the evaluated-events curve (`bench.watch`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from tests.support.server import RunningServer, start_server

from bench.bodies import EVENTS_PER_BATCH, Batch
from bench.catalog import register_webhook
from bench.databases import BenchDatabases
from bench.engines import tree
from bench.latency import Latencies, crossing_acks, match
from bench.loadgen import LoadProcess, encode_request
from bench.machine import OtherWork
from bench.plan import Plan
from bench.receiver import Receiver
from bench.stages import LOG_LEVEL_ENV, breakdown
from bench.watch import evaluated_fraction, wait_processed

POLL_S = 0.5
DONE_POLL_S = 0.01
EVALUATION_TIMEOUT_S = 1800.0  # at 1,000,000 customers the evaluator may lag minutes behind
WEBHOOK_QUIET_S = 3.0


@dataclass
class Session:
    server: RunningServer
    receiver: Receiver
    client: httpx.Client


@contextmanager
def session(
    databases: BenchDatabases,
    seed_url: str,
    name: str,
    token: str,
    workdir: Path,
    *,
    stages: bool = False,
) -> Iterator[Session]:
    """A copy of the seeded database, a server on it, and a webhook receiver registered with it
    (the server logging at debug level when `stages`, for `bench.stages`)."""
    url = databases.copy(seed_url, name)
    receiver = Receiver()
    server: RunningServer | None = None
    env = {**databases.server_env, **(LOG_LEVEL_ENV if stages else {})}
    try:
        server = start_server(url, workdir, token=token, port=None, **env)
        client = httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60)
        register_webhook(client, receiver.url)
        yield Session(server, receiver, client)
    finally:
        if server is not None:
            server.kill()  # the copy is thrown away: no need to wait for a graceful shutdown
        receiver.stop()
        databases.drop(url)


@dataclass
class LoadRun:
    """One load against the server, and what was observed while it ran."""

    acked_events: int
    started_ns: int
    last_ack_ns: int
    evaluated_ns: int
    ack_ns: list[int]
    # (time_ns, acknowledged events, evaluated events) sampled while the load ran
    samples: list[tuple[int, int, int]] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    first_failure: str | None = None

    @property
    def acked_per_s(self) -> float:
        return self.acked_events / max((self.last_ack_ns - self.started_ns) / 1e9, 1e-9)

    @property
    def evaluated_per_s(self) -> float:
        return self.acked_events / max((self.evaluated_ns - self.started_ns) / 1e9, 1e-9)

    def summary(self) -> dict[str, Any]:
        return {
            "acked_events": self.acked_events,
            "acked_events_per_s": round(self.acked_per_s),
            "evaluated_events_per_s": round(self.evaluated_per_s),
            "seconds_to_ack": round((self.last_ack_ns - self.started_ns) / 1e9, 3),
            "seconds_to_evaluate": round((self.evaluated_ns - self.started_ns) / 1e9, 3),
            "failures": self.failures,
            "first_failure": self.first_failure,
        }


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _sample(client: httpx.Client, batches: Sequence[Batch], load: LoadProcess) -> tuple[int, int, int]:
    acked = [k for k, t in enumerate(load.ack_ns) if t]
    fraction = evaluated_fraction(client, [batches[k].last_transaction_id for k in acked])
    events = len(acked) * EVENTS_PER_BATCH
    return time.time_ns(), events, round(fraction * events)


def _drive(
    session: Session,
    batches: Sequence[Batch],
    *,
    label: str,
    connections: int,
    duration_s: float | None,
    rate_per_s: float | None,
    console: Console,
) -> LoadRun:
    port = int(session.server.base_url.rsplit(":", 1)[1])
    requests = [encode_request(port, "/v1/ingest", session.server.token, b.body) for b in batches]
    batches_per_s = None if rate_per_s is None else rate_per_s / EVENTS_PER_BATCH
    load = LoadProcess(
        port, requests, connections=connections, duration_s=duration_s, rate_per_s=batches_per_s
    )
    samples: list[tuple[int, int, int]] = []
    with _progress(console) as progress:
        task = progress.add_task(label, total=duration_s or len(batches) / (batches_per_s or 1), status="")
        started = time.monotonic()
        next_sample = started + POLL_S
        while not load.done():
            time.sleep(DONE_POLL_S)
            if time.monotonic() < next_sample:
                continue
            next_sample += POLL_S
            samples.append(_sample(session.client, batches, load))
            _, acked, evaluated = samples[-1]
            progress.update(
                task,
                completed=time.monotonic() - started,
                status=f"{acked:,} acked, ~{evaluated:,} evaluated",
            )
        result = load.result()
        progress.update(task, description=f"{label}: waiting for the evaluator")
        last_ids = [batches[k].last_transaction_id for k in result.last_acked if k >= 0]
        evaluated_ns = _drain(
            session.client, batches, load, last_ids, samples, result.acked * EVENTS_PER_BATCH
        )
    ack_ns = list(load.ack_ns)
    return LoadRun(
        acked_events=result.acked * EVENTS_PER_BATCH,
        started_ns=result.started_ns,
        last_ack_ns=max(ack_ns, default=result.started_ns),
        evaluated_ns=evaluated_ns,
        ack_ns=ack_ns,
        samples=samples,
        failures=dict(result.failures),
        first_failure=result.first_failure,
    )


def _drain(
    client: httpx.Client,
    batches: Sequence[Batch],
    load: LoadProcess,
    last_ids: list[str],
    samples: list[tuple[int, int, int]],
    acked_events: int,
) -> int:
    """Wait until every acknowledged event is evaluated, still sampling the curve meanwhile."""
    deadline = time.monotonic() + EVALUATION_TIMEOUT_S
    while True:
        try:
            evaluated_ns = wait_processed(client, last_ids, timeout_s=POLL_S)
        except TimeoutError:
            samples.append(_sample(client, batches, load))
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the evaluator had not processed every acknowledged event {EVALUATION_TIMEOUT_S:.0f}s "
                    "after the load ended"
                ) from None
            continue
        samples.append((evaluated_ns, acked_events, acked_events))
        return evaluated_ns


def throughput(
    session: Session, batches: Sequence[Batch], *, connections: int, seconds: float, console: Console
) -> LoadRun:
    """(a): post as fast as the server acknowledges, for `seconds`; then wait for evaluation."""
    return _drive(
        session,
        batches,
        label="(a) throughput",
        connections=connections,
        duration_s=seconds,
        rate_per_s=None,
        console=console,
    )


def warm_up(
    session: Session,
    batches: Sequence[Batch],
    *,
    label: str,
    connections: int,
    rate_per_s: float | None,
    console: Console,
) -> LoadRun:
    """Post every batch (at `rate_per_s` events/s, or as fast as acknowledged), then wait until
    every event is evaluated: nothing of it is measured."""
    return _drive(
        session,
        batches,
        label=label,
        connections=connections,
        duration_s=None,
        rate_per_s=rate_per_s,
        console=console,
    )


@dataclass
class LatencyRun:
    load: LoadRun  # the measured phase
    latencies: Latencies
    warmup: LoadRun
    warmup_webhooks: int  # received during the warm-up, not counted
    shared_with: str  # what else used the cores during the measured phase
    stages: dict[str, Any] | None = None  # `bench.stages.breakdown`, when the server logged for it


def latency(
    session: Session,
    warmup: Sequence[Batch],
    measured: Sequence[Batch],
    plan: Plan,
    *,
    crossing: Collection[int],
    rate_per_s: float,
    connections: int,
    webhook_wait_s: float,
    console: Console,
    stages: bool = False,
) -> LatencyRun:
    """(b): the warm-up batches at `rate_per_s` events/s until every event is evaluated and its
    webhooks arrived (not measured: it also warms the server, as a long-running one is); then the
    measured batches at the same rate, and each threshold crossed by the `crossing` customers
    matched with its webhook."""
    warmed = warm_up(
        session,
        warmup,
        label=f"(b) warm-up at {rate_per_s:,.0f} events/s",
        connections=connections,
        rate_per_s=rate_per_s,
        console=console,
    )
    fired = crossing_acks(plan, warmup, warmed.ack_ns)
    with console.status(f"(b) warm-up: waiting for {len(fired):,} webhooks"):
        wait_webhooks(session.receiver, len(fired), webhook_wait_s)
    warmup_webhooks = session.receiver.received
    others = OtherWork()
    load = _drive(
        session,
        measured,
        label=f"(b) latency at {rate_per_s:,.0f} events/s",
        connections=connections,
        duration_s=None,
        rate_per_s=rate_per_s,
        console=console,
    )
    crossings = crossing_acks(plan, measured, load.ack_ns, only=crossing)
    with console.status(f"(b) waiting for {len(crossings):,} webhooks (at most {webhook_wait_s:.0f}s)"):
        wait_webhooks(session.receiver, warmup_webhooks + len(crossings), webhook_wait_s)
    waited_until_ns = time.time_ns()
    shared_with = others.describe(set(tree(os.getpid())))
    arrivals = [a for a in session.receiver.stop() if a.arrived_ns >= load.started_ns]
    traced = breakdown(session.server.log_path, crossings, arrivals) if stages else None
    return LatencyRun(
        load, match(crossings, arrivals, waited_until_ns), warmed, warmup_webhooks, shared_with, traced
    )


def wait_webhooks(
    receiver: Receiver, expected: int, timeout_s: float, quiet_s: float | None = WEBHOOK_QUIET_S
) -> None:
    """Until as many webhooks as crossings arrived, none for `quiet_s` (when every event is
    already evaluated, a webhook that late is not coming soon), or the timeout."""
    deadline = time.monotonic() + timeout_s
    last, quiet_since = receiver.received, time.monotonic()
    while receiver.received < expected and time.monotonic() < deadline:
        time.sleep(0.05)
        if receiver.received != last:
            last, quiet_since = receiver.received, time.monotonic()
        elif quiet_s is not None and time.monotonic() - quiet_since > quiet_s:
            return
