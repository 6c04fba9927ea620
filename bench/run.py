"""The benchmark: workloads (a)-(e) against a real `meterline serve`, several runs, medians.

For each database (SQLite; PostgreSQL too when METERLINE_BENCH_POSTGRES_URL or
METERLINE_DATABASE_URL names a server) and each customer count, the customers are seeded once
(`bench.seed`) and every run starts from a copy of that database:

- the generator's ceiling: the same load generator against a sink answering 200 `{}` at once;
- (a) throughput: batches of 100 events posted closed-loop for `--seconds`, events/s acknowledged
  and events/s acknowledged AND evaluated;
- (d) the floor: the same bodies parsed and appended durably to a fresh database of the same
  kind, with the same dedup index, nothing else; (a) is reported as a ratio to it;
- (b) latency, at the smallest customer count, crossings spread: two runs, at 50% and at 80% of
  (a)'s evaluated rate. A quarter of the customers are background, the others (at most as many
  as make 200 crossings per second) cross. Warm-up at the rate, not measured: each background
  customer gets the planned events (crossing its three thresholds), until evaluated and their
  webhooks arrived. Then open loop at the rate for `--latency-seconds`: each crossing customer
  gets the planned events within its own window of `CROSSING_WINDOW_S`, the windows' starts
  staggered evenly over the run, and the rest of the rate goes to the background customers
  (past their thresholds: ordinary traffic). From the acknowledgement crossing each threshold to
  the webhook's arrival, p50/p99/max (a webhook still missing `--webhook-wait-seconds` after the
  load counts with the latency it had reached then);
- (c) scale: (a)'s evaluated events/s at the largest customer count over the smallest;
- (e) burst, on a copy of the smallest count's seeded database with clones added up to
  `--burst-customers`: each of those customers one event short of its SOFT threshold; then one
  event each, in batches of 100 posted at once: latencies, and the time from
  the first request to the last webhook against what a bare client needs to post the same
  webhooks to the same kind of receiver (`bench.burst`).

`--quick` (what `make bench-quick` runs) does one short run at 1,000 customers in about a minute
and a half. `--only latency burst --evaluated-rate N` runs (b) at 50% and 80% of N events/s and
(e), nothing else (so that two builds compare at the same offered load); `--stages` has the server
log at debug level and prints where each webhook's latency went, stage by stage (`bench.stages`). Progress goes to stderr; the last line of stdout is one JSON object:
{"events_per_s", "floor_events_per_s", "ratio_to_floor", "alert_p99_ms", "alert_p99_ms_at_80",
"burst_delivered_s", "customers"} (alert_p99_ms: at 50% of the rate).
Without `--quick`, the tables between the bench markers of BENCHMARKS.md are rewritten.

    python -m bench.run [--quick] [--customers 1000 1000000] [--runs 3] [--seconds 20]
    python -m bench.run --quick --only latency burst --evaluated-rate 12000 [--stages]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import burst, stages
from bench.bodies import (
    EVENTS_PER_BATCH,
    Spread,
    burst_batches,
    even_batches,
    spread_batches,
    throughput_batches,
)
from bench.databases import BenchDatabases
from bench.floor import floor
from bench.loadgen import ceiling, encode_request
from bench.machine import machine, versions
from bench.plan import Plan
from bench.seed import SeedResult, extend, seed
from bench.workloads import LatencyRun, LoadRun, latency, session, throughput

REPOSITORY = Path(__file__).resolve().parent.parent
POSTGRES_ENV = ("METERLINE_BENCH_POSTGRES_URL", "METERLINE_DATABASE_URL")
LATENCY_LOADS = (50, 80)  # (b)'s rates, in percent of (a)'s evaluated rate
MAX_CROSSINGS_PER_S = 200  # (b): the target's spread crossings
CROSSING_WINDOW_S = 2.0  # (b): each crossing customer's events fall within a window this long
BACKGROUND_SHARE = 4  # (b): one customer in this many is background traffic
POSTGRES_NOTE = " (postgres: the server this bench uses among them)"
WORKLOADS = ("throughput", "latency", "burst")  # (a) with (d) and the ceiling, (b), (e)


@dataclass
class Settings:
    quick: bool
    customers: list[int]
    runs: int
    seconds: float
    latency_seconds: float
    webhook_wait_seconds: float
    ceiling_seconds: float
    floor_seconds: float
    connections: int
    events_per_customer: int
    max_events_per_s: int
    burst_customers: int
    databases: list[str]
    output_dir: Path
    benchmarks_md: Path | None
    plot: bool
    workdir: Path | None
    keep_databases: bool
    verify_sample: int
    workloads: frozenset[str] = frozenset(WORKLOADS)
    evaluated_rate: float | None = None  # (b)'s 100%, instead of (a)'s measured rate
    stages: bool = False


@dataclass
class Plotted:
    """The runs drawn in the PNG: the first run at the smallest customer count."""

    throughput: LoadRun | None = None
    latency: LatencyRun | None = None


@dataclass
class Bench:
    settings: Settings
    console: Console
    results: dict[str, Any] = field(default_factory=dict)
    plotted: Plotted = field(default_factory=Plotted)
    rng: random.Random = field(default_factory=lambda: random.Random(2026))


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="one short run at 1,000 customers (about 1.5 minutes)"
    )
    parser.add_argument(
        "--customers", type=int, nargs="+", help="customer counts (default 1000 1000000; quick: 1000)"
    )
    parser.add_argument(
        "--runs", type=int, help="runs per configuration, medians reported (default 3; quick: 1)"
    )
    parser.add_argument("--seconds", type=float, help="(a) duration in seconds (default 20; quick: 5)")
    parser.add_argument(
        "--latency-seconds", type=float, help="(b) measured phase in seconds (default 15; quick: 5)"
    )
    parser.add_argument(
        "--webhook-wait-seconds",
        type=float,
        help="(b), (e) longest wait for the webhooks once the load ends (default 60; quick: 10)",
    )
    parser.add_argument(
        "--ceiling-seconds", type=float, help="generator ceiling duration (default 3; quick: 2)"
    )
    parser.add_argument("--floor-seconds", type=float, help="(d) longest duration (default 10; quick: 3)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    parser.add_argument(
        "--events-per-customer",
        type=int,
        help="events per customer planned in (b); sets tiers and thresholds (default 40; quick: 20)",
    )
    parser.add_argument(
        "--max-events-per-s",
        type=int,
        default=150_000,
        help="(a) bodies are built for at most this rate times --seconds (default 150000)",
    )
    parser.add_argument(
        "--burst-customers",
        type=int,
        default=3000,
        help="(e) simultaneous crossings, one per customer; the seeded database is extended by cloning "
        "to that many customers (default 3000)",
    )
    parser.add_argument(
        "--database",
        choices=["auto", "sqlite", "postgresql"],
        default="auto",
        help="auto: SQLite, and PostgreSQL too when METERLINE_BENCH_POSTGRES_URL (or METERLINE_DATABASE_URL) is set",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="results.json and the PNG (default bench/results when BENCHMARKS.md is rewritten, "
        "else bench/results/quick, so a partial run leaves the committed results alone)",
    )
    parser.add_argument(
        "--benchmarks-md", type=Path, help="the file whose bench section is rewritten (default BENCHMARKS.md)"
    )
    parser.add_argument("--no-report", action="store_true", help="do not rewrite BENCHMARKS.md")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    parser.add_argument(
        "--workdir", type=Path, help="databases and server logs (default: a temporary directory)"
    )
    parser.add_argument(
        "--verify-sample", type=int, default=20, help="seeded clones checked through the API (default 20)"
    )
    parser.add_argument(
        "--keep-databases",
        action="store_true",
        help="keep the seeded databases (in --workdir) for inspection",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=WORKLOADS,
        help="run only these workloads: throughput is (a) with (d) and the generator ceiling, "
        "latency (b), burst (e); latency without throughput needs --evaluated-rate",
    )
    parser.add_argument(
        "--evaluated-rate",
        type=float,
        help="events/s that (b)'s 50%% and 80%% are of, instead of (a)'s measured evaluated rate",
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="the server logs at debug level; (b) and (e) print each stage's share of the latency",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    workloads = frozenset(args.only or WORKLOADS)
    if "latency" in workloads and "throughput" not in workloads and not args.evaluated_rate:
        parser.error("--only latency without throughput needs --evaluated-rate")

    def pick(value: Any, full: Any, short: Any) -> Any:
        return value if value is not None else short if quick else full

    databases = ["sqlite"]
    if args.database == "postgresql":
        databases = ["postgresql"]
    elif args.database == "auto" and _postgres_url() is not None:
        databases.append("postgresql")
    write_report = not args.no_report and not quick and args.only is None  # the report needs all
    return Settings(
        quick=quick,
        customers=sorted(pick(args.customers, [1000, 1_000_000], [1000])),
        runs=pick(args.runs, 3, 1),
        seconds=pick(args.seconds, 20.0, 5.0),
        latency_seconds=pick(args.latency_seconds, 15.0, 5.0),
        webhook_wait_seconds=pick(args.webhook_wait_seconds, 60.0, 10.0),
        ceiling_seconds=pick(args.ceiling_seconds, 3.0, 2.0),
        floor_seconds=pick(args.floor_seconds, 10.0, 3.0),
        connections=args.connections,
        events_per_customer=pick(args.events_per_customer, 40, 20),
        max_events_per_s=args.max_events_per_s,
        burst_customers=args.burst_customers,
        databases=databases,
        output_dir=args.output_dir
        or (REPOSITORY / "bench/results" if write_report else REPOSITORY / "bench/results/quick"),
        benchmarks_md=(args.benchmarks_md or REPOSITORY / "BENCHMARKS.md") if write_report else None,
        plot=not args.no_plot,
        workdir=args.workdir,
        keep_databases=args.keep_databases,
        verify_sample=args.verify_sample,
        workloads=workloads,
        evaluated_rate=args.evaluated_rate,
        stages=bool(args.stages),
    )


def _postgres_url() -> str | None:
    for name in POSTGRES_ENV:
        value = os.environ.get(name, "")
        if value.startswith("postgres"):
            return value
    return None


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def measure_ceiling(bench: Bench) -> float:
    s = bench.settings
    batches = throughput_batches(s.customers[0], 500 * EVENTS_PER_BATCH, bench.rng)
    requests = [encode_request(0, "/v1/ingest", "token", b.body) for b in batches]
    rates = []
    for run in range(s.runs):
        with bench.console.status(f"generator ceiling against a sink, run {run + 1}/{s.runs}"):
            rates.append(ceiling(requests, connections=s.connections, seconds=s.ceiling_seconds))
        bench.console.print(f"generator ceiling: {rates[-1]:,.0f} events/s")
    bench.results["generator_ceiling"] = {
        "runs": [round(r) for r in rates],
        "median": round(statistics.median(rates)),
    }
    return statistics.median(rates)


def run_database(bench: Bench, kind: str, workdir: Path, generator_ceiling: float) -> dict[str, Any]:
    s = bench.settings
    databases = BenchDatabases(workdir, _postgres_url() if kind == "postgresql" else None)
    found: dict[str, Any] = {}
    try:
        found["server_version"] = databases.server_version()
        plan = Plan(s.events_per_customer)
        for customers in s.customers:
            bench.console.rule(f"{kind}: {customers:,} customers")
            seed_url = databases.new(f"seed{customers}")
            seeded = seed(
                seed_url,
                workdir,
                customers,
                plan,
                console=bench.console,
                sample=s.verify_sample,
                server_env=databases.server_env,
            )
            bench.console.print(
                f"seeded {customers:,} customers in {sum(seeded.seconds.values()):.1f}s "
                f"(clone {seeded.seconds['clone']:.1f}s); {len(seeded.verified)} clones checked through the API"
            )
            first_count = customers == s.customers[0]
            runs = [
                one_run(bench, databases, seeded, run, generator_ceiling, latency_too=first_count)
                if "throughput" in s.workloads
                else latency_runs(bench, databases, seeded, run)
                for run in range(s.runs)
                if "throughput" in s.workloads or ("latency" in s.workloads and first_count)
            ]
            if first_count and "burst" in s.workloads:
                found["burst"] = burst_runs(bench, databases, seeded)
            if not s.keep_databases:
                databases.drop(seed_url)
            found[str(customers)] = {"seed": _seed_summary(seeded), "runs": runs, "median": _medians(runs)}
        smallest, largest = str(s.customers[0]), str(s.customers[-1])
        if smallest != largest and "throughput" in s.workloads:
            low = found[smallest]["median"]["evaluated_events_per_s"]
            high = found[largest]["median"]["evaluated_events_per_s"]
            found["scale_ratio"] = round(high / low, 3) if low else None
    finally:
        databases.close(keep=databases.created if s.keep_databases else ())
    return found


def _seed_summary(seeded: SeedResult) -> dict[str, Any]:
    return {
        "customers": seeded.customers,
        "seconds": {k: round(v, 2) for k, v in seeded.seconds.items()},
        "rows_per_customer": seeded.rows_per_customer,
        "verified_clones": len(seeded.verified),
        "verified": [{"alias": v["alias"], "alerts": v["alerts"]} for v in seeded.verified],
        "warnings": seeded.warnings,
        "events_per_customer_planned": seeded.plan.events_per_customer,
        "thresholds": {a.kind.value: str(a.threshold) for a in seeded.plan.alerts},
        "commit_amount": str(seeded.plan.commit_amount),
    }


def one_run(
    bench: Bench,
    databases: BenchDatabases,
    seeded: SeedResult,
    run: int,
    generator_ceiling: float,
    *,
    latency_too: bool,
) -> dict[str, Any]:
    s = bench.settings
    customers = seeded.customers
    workdir = databases.workdir
    budget = int(min(generator_ceiling, s.max_events_per_s) * s.seconds)
    with bench.console.status(f"building {budget:,} events"):
        batches = throughput_batches(customers, budget, bench.rng)
    with session(databases, seeded.database_url, f"run{customers}_{run}", seeded.token, workdir) as live:
        load = throughput(live, batches, connections=s.connections, seconds=s.seconds, console=bench.console)
        webhooks = live.receiver.received
    sent = [b.body for b, t in zip(batches, load.ack_ns, strict=True) if t]
    with bench.console.status("(d) floor: the same bodies parsed and appended, nothing else"):
        floor_url = databases.new(f"floor{customers}_{run}")
        measured = floor(
            floor_url, sent or [b.body for b in batches], group=s.connections, seconds=s.floor_seconds
        )
        databases.drop(floor_url)
    figures: dict[str, Any] = {
        **load.summary(),
        "webhooks_received": webhooks,
        "floor_events_per_s": round(measured.events_per_s),
        "ratio_to_floor": round(load.evaluated_per_s / measured.events_per_s, 3) if measured.events else None,
    }
    bench.console.print(
        f"run {run + 1}: acked {load.acked_per_s:,.0f}/s, acked and evaluated {load.evaluated_per_s:,.0f}/s, "
        f"floor {measured.events_per_s:,.0f}/s (ratio {figures['ratio_to_floor']}), "
        f"{load.acked_events:,} events, {webhooks} webhooks"
        + (f", failures {load.failures} ({load.first_failure})" if load.failures else "")
    )
    if bench.plotted.throughput is None:
        bench.plotted.throughput = load
    if latency_too and "latency" in s.workloads:
        rate = s.evaluated_rate or load.evaluated_per_s
        figures |= latency_runs(bench, databases, seeded, run, rate)
    return figures


def latency_runs(
    bench: Bench, databases: BenchDatabases, seeded: SeedResult, run: int, rate: float | None = None
) -> dict[str, Any]:
    """(b) at each of LATENCY_LOADS of `rate` (default: `--evaluated-rate`)."""
    full = rate or bench.settings.evaluated_rate
    assert full is not None
    return {
        "latency": {
            str(share): latency_run(bench, databases, seeded, run, full * share / 100, share)
            for share in LATENCY_LOADS
        }
    }


def split_customers(settings: Settings, plan: Plan, customers: int, rate: float) -> tuple[int, int]:
    """(background customers, crossing customers) for (b): a quarter of the customers are
    background; as many of the others cross as keep the crossings at most MAX_CROSSINGS_PER_S
    and their events at most half of the measured phase's (the rest is background traffic)."""
    background = max(1, customers // BACKGROUND_SHARE)
    by_target = math.floor(MAX_CROSSINGS_PER_S * settings.latency_seconds / len(plan.alerts))
    by_rate = math.floor(rate * settings.latency_seconds / 2 / plan.events_per_customer)
    return background, max(1, min(customers - background, by_target, by_rate))


def latency_run(
    bench: Bench, databases: BenchDatabases, seeded: SeedResult, run: int, rate: float, share: int
) -> dict[str, Any]:
    s = bench.settings
    plan = seeded.plan
    customers = seeded.customers
    background_count, crossing_count = split_customers(s, plan, customers, rate)
    chosen = bench.rng.sample(range(customers), background_count + crossing_count)
    background, crossing = sorted(chosen[:background_count]), sorted(chosen[background_count:])
    window_s = min(CROSSING_WINDOW_S, s.latency_seconds / 2)
    warmup = even_batches(background, plan.events_per_customer, bench.rng)
    spread = Spread(
        crossing,
        background,
        plan.events_per_customer,
        round(rate * s.latency_seconds),
        s.latency_seconds,
        window_s,
    )
    batches = spread_batches(spread, bench.rng)
    with session(
        databases,
        seeded.database_url,
        f"latency{customers}_{share}_{run}",
        seeded.token,
        databases.workdir,
        stages=s.stages,
    ) as live:
        measured = latency(
            live,
            warmup,
            batches,
            plan,
            crossing=set(crossing),
            rate_per_s=rate,
            connections=s.connections,
            webhook_wait_s=s.webhook_wait_seconds,
            console=bench.console,
            stages=s.stages,
        )
    summary = measured.latencies.summary()
    phase_s = (measured.load.last_ack_ns - measured.load.started_ns) / 1e9
    crossings_per_s = summary["expected"] / phase_s if phase_s > 0 and summary["expected"] else None
    shared_with = measured.shared_with + (POSTGRES_NOTE if databases.kind == "postgresql" else "")
    bench.console.print(
        f"run {run + 1} (b) latency at {share}% of (a), {rate:,.0f} events/s for {phase_s:.1f}s: "
        f"{crossing_count:,} crossing customers ({_n(crossings_per_s)} crossings/s, each within "
        f"{window_s:g}s), {background_count:,} background: {_latency_line(summary)}; {shared_with}"
    )
    if measured.stages is not None:
        bench.console.print(f"run {run + 1} (b) at {share}%: {stages.describe(measured.stages)}")
    if bench.plotted.latency is None:
        bench.plotted.latency = measured
    return {
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in summary.items()},
        "share_of_evaluated_rate_percent": share,
        "rate_events_per_s": round(rate),
        "crossing_customers": crossing_count,
        "background_customers": background_count,
        "crossings_per_s": None if crossings_per_s is None else round(crossings_per_s, 1),
        "events_per_customer": plan.events_per_customer,
        "crossing_window_s": window_s,
        "warmup_webhooks": measured.warmup_webhooks,
        "load": measured.load.summary(),
        "warmup_load": measured.warmup.summary(),
        "shared_with": shared_with,
        **({"stages": measured.stages} if measured.stages is not None else {}),
    }


def _latency_line(summary: dict[str, Any]) -> str:
    return (
        f"p50 {_ms(summary['p50_ms'])}, p99 {_ms(summary['p99_ms'])}, max {_ms(summary['max_ms'])} over "
        f"{summary['webhooks']} webhooks ({summary['missing']} of {summary['expected']} crossings still "
        f"without one when the wait ended: counted with the latency reached then; {summary['unexpected']} "
        f"unexpected, {summary['duplicates']} duplicates); "
        f"ack to the start of the evaluator batch that measured the crossing p50 "
        f"{_ms(summary['to_batch_p50_ms'])}, p99 {_ms(summary['to_batch_p99_ms'])}; from there to the "
        f"webhook's arrival p50 {_ms(summary['after_batch_start_p50_ms'])}, "
        f"p99 {_ms(summary['after_batch_start_p99_ms'])}"
    )


def burst_runs(bench: Bench, databases: BenchDatabases, seeded: SeedResult) -> dict[str, Any]:
    """(e): a copy of the seeded database with clones added up to `--burst-customers`; each run
    on a copy of that."""
    s = bench.settings
    customers = max(s.burst_customers, seeded.customers)
    bench.console.rule(f"{databases.kind}: (e) burst of {s.burst_customers:,} crossings")
    started = time.perf_counter()
    extended = extend(
        seeded, databases.copy(seeded.database_url, "burst_seed"), customers, console=bench.console
    )
    bench.console.print(
        f"copied and extended by cloning to {customers:,} customers in {time.perf_counter() - started:.1f}s"
    )
    try:
        runs = [burst_run(bench, databases, extended, run) for run in range(s.runs)]
    finally:
        if not s.keep_databases:
            databases.drop(extended.database_url)
    keys = ["p50_ms", "p99_ms", "max_ms", "delivered_s", "bare_client_s", "ratio_to_bare_client"]
    medians = {k: _median([r[k] for r in runs]) for k in keys}
    return {"customers": s.burst_customers, "runs": runs, "median": medians}


def burst_run(bench: Bench, databases: BenchDatabases, seeded: SeedResult, run: int) -> dict[str, Any]:
    s = bench.settings
    customers = range(s.burst_customers)
    warmup = even_batches(customers, burst.soft_events(seeded.plan) - 1, bench.rng)
    batches = burst_batches(customers, bench.rng)
    with session(
        databases, seeded.database_url, f"burst_{run}", seeded.token, databases.workdir, stages=s.stages
    ) as live:
        measured = burst.burst(
            live,
            warmup,
            batches,
            seeded.plan,
            connections=s.connections,
            webhook_wait_s=s.webhook_wait_seconds,
            console=bench.console,
            stages=s.stages,
        )
        concurrency = burst.server_concurrency(live.server.env)
    with bench.console.status(f"(e) baseline: a bare client posting {len(measured.bodies):,} webhooks"):
        baseline_s = burst.bare_client_s(measured.bodies, concurrency)
    found = burst.summary(measured, baseline_s, concurrency)
    if databases.kind == "postgresql":
        found["shared_with"] += POSTGRES_NOTE
    bench.console.print(
        f"run {run + 1} (e) burst of {s.burst_customers:,} crossings in {len(batches)} batches: "
        f"first request to last webhook {_seconds(found['delivered_s'])} (target 1 s), a bare client "
        f"posting the same {len(measured.bodies):,} webhooks {concurrency} at a time "
        f"{_seconds(found['bare_client_s'])}, ratio {_n(found['ratio_to_bare_client'], 2)}; "
        f"{_latency_line(found)}"
        + (f"; failures {measured.failures}" if measured.failures else "")
        + f"; the server and its engine processes used {found['server_cpu_s']:.2f} CPU-s meanwhile"
        + f"; {found['shared_with']}"
    )
    if measured.stages is not None:
        bench.console.print(f"run {run + 1} (e): {stages.describe(measured.stages)}")
    return found


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{value:,.3f} s"


def _n(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["acked_events_per_s", "evaluated_events_per_s", "floor_events_per_s", "ratio_to_floor"]
    medians: dict[str, Any] = {k: _median([r.get(k) for r in runs]) for k in keys}
    if any("latency" in r for r in runs):
        for share in LATENCY_LOADS:
            prefix = "latency" if share == LATENCY_LOADS[0] else f"latency_{share}"
            for k in ("p50_ms", "p99_ms", "max_ms"):
                medians[f"{prefix}_{k}"] = _median(
                    [r["latency"][str(share)].get(k) for r in runs if "latency" in r]
                )
    return medians


def summary_line(bench: Bench) -> dict[str, Any]:
    s = bench.settings
    found = bench.results["databases"][s.databases[0]]
    first = found[str(s.customers[0])]["median"]
    p99, p99_at_80 = first.get("latency_p99_ms"), first.get(f"latency_{LATENCY_LOADS[1]}_p99_ms")
    delivered = found["burst"]["median"]["delivered_s"] if "burst" in found else None
    evaluated, floor_rate, ratio = (
        first[k] for k in ("evaluated_events_per_s", "floor_events_per_s", "ratio_to_floor")
    )
    return {
        "events_per_s": round(evaluated) if evaluated is not None else None,
        "floor_events_per_s": round(floor_rate) if floor_rate is not None else None,
        "ratio_to_floor": round(ratio, 3) if ratio is not None else None,
        "alert_p99_ms": round(p99, 1) if p99 is not None else None,
        "alert_p99_ms_at_80": round(p99_at_80, 1) if p99_at_80 is not None else None,
        "burst_delivered_s": round(delivered, 3) if delivered is not None else None,
        "customers": s.customers[0],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    settings = parse_args(argv)
    console = Console(stderr=True)
    bench = Bench(settings, console)
    command = "python -m bench.run " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    bench.results = {
        "command": command.strip(),
        "started_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "settings": _settings_view(settings),
    }
    with tempfile.TemporaryDirectory(prefix="meterline-bench-") as tmp:
        workdir = settings.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        generator_ceiling = measure_ceiling(bench) if "throughput" in settings.workloads else 0.0
        bench.results["databases"] = {}
        for kind in settings.databases:
            bench.results["databases"][kind] = run_database(bench, kind, workdir, generator_ceiling)
    postgres = bench.results["databases"].get("postgresql", {}).get("server_version")
    bench.results["versions"] = versions(postgres)
    bench.results["seconds"] = round(time.perf_counter() - started, 1)
    _write_outputs(bench)
    line = summary_line(bench)
    console.print(f"done in {bench.results['seconds']:.0f}s")
    print(json.dumps(line), flush=True)
    return bench.results


def _settings_view(settings: Settings) -> dict[str, Any]:
    return {
        k: str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, frozenset) else v
        for k, v in vars(settings).items()
    }


def _write_outputs(bench: Bench) -> None:
    s = bench.settings
    s.output_dir.mkdir(parents=True, exist_ok=True)
    raw = s.output_dir / "results.json"
    raw.write_text(json.dumps(bench.results, indent=2) + "\n")
    png = s.output_dir / "throughput_latency.png"
    if s.plot:
        from bench.plot import plot

        if plot(bench.plotted.throughput, bench.plotted.latency, png):
            bench.console.print(f"plot written to {png}")
        else:
            bench.console.print("matplotlib is not installed: no plot (pip install -e '.[bench]')")
    if s.benchmarks_md is not None:
        from bench.report import write_report

        write_report(s.benchmarks_md, bench.results, raw, png)
        bench.console.print(f"{s.benchmarks_md} updated")


if __name__ == "__main__":
    main()
