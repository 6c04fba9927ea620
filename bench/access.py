"""Access decisions: how long a check takes, how soon a crossing denies access, a guard's answer.

On a seeded database (`bench.seed`: the bench's customers, each with a contract, a commit and its
alerts), every customer gets a hard spend limit through /v1/spend-limits/set, half of them one
they are already past. Then, against one `meterline serve`:

1. the baseline: a `GET /health` round trip (no token, two indexed reads), `--requests` times;
2. `POST /v1/access/check` for 1 customer and for 100 (ids and aliases mixed), `--requests`
   times each, one at a time over a keep-alive connection: end to end at the client, and server
   side (the `Server-Timing` header: from the handler's start to its answer, the reads included);
   each also as a ratio to the baseline's end-to-end time, with the API process's CPU per check
   (all its threads, from /proc);
3. `AccessGuard.has_access` on 100 watched customers, a million calls: the decision time;
4. `POST /v1/access/reserve` open loop at each of `--reserve-rates` a second (100, then 1,000,
   by default) for `--reserve-seconds`, over 16 keep-alive connections from a process of its own (`bench.loadgen`),
   each reserving 1 cent for a random customer with room under its hard limit: server side (the
   `Server-Timing` header) and end to end from the instant each was due (so waiting for a free
   connection counts), with the requests each commit answered (`/metrics`) and the API
   process's CPU per reservation (all its threads, from /proc); its baseline, the
   floor of any durable commit: `fsync` of 4 KiB appended to a file beside the database, 500
   times, on the same disk in the same run;
5. unless `--no-load`: ack -> `has_access: false`. The ingest capacity (events/s acknowledged and
   evaluated, closed loop for `--capacity-seconds`) is measured first; then, with ingest running open loop at half that rate on other customers,
   each of `--probes` customers gets a hard limit 1 cent above its spend, one event (2 cents) is
   sent for it, and checks are polled (every millisecond) until it is denied: the time from the
   event's acknowledgement to the first check that says `has_access: false`.

Everything shares the machine's cores with whatever else runs: the report says what did, and how
much, while the bench ran.

`--pair A_PYTHON B_PYTHON` compares two builds instead (each interpreter one checkout's, with its
meterline installed): the database is seeded and limited once, then a `meterline serve` of A, B,
B, A (`--pair-rounds` times) each runs on a fresh copy of it, alternating in one stretch, the
checks (2.) and the reservations (4.) above; each run with the load average before and after it
and the API process's CPU per request. `--b-env KEY=VALUE` sets a setting for B's servers only
(the same interpreter twice: a setting off against on), `--a-env` for A's.

    python bench/access.py [--customers 1000] [--requests 2000] [--reserve-rates 100,1000] [--probes 50]
        [--no-load] [--postgres]
    python bench/access.py --pair A_PYTHON B_PYTHON [--a-env KEY=VALUE] [--b-env KEY=VALUE] [--pair-rounds 1]
        [--requests 2000] [--reserve-rates 100,1000] [--reserve-seconds 10] [--postgres]

PostgreSQL: --postgres, on METERLINE_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
The last stdout line is a JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from rich.console import Console
from rich.table import Table
from tests.support.server import RunningServer, start_server
from tests.support.waiting import wait_for

from bench.bodies import EVENTS_PER_BATCH, throughput_batches
from bench.catalog import customer_by_alias
from bench.check_profile import profile_checks
from bench.databases import BenchDatabases
from bench.engines import cpu_seconds, tree
from bench.http_profile import profile_http
from bench.latency import nearest_rank
from bench.loadgen import LoadProcess, encode_request
from bench.machine import OtherWork, machine
from bench.plan import EVENT_TYPE, Plan, alias_for
from bench.seed import seed
from meterline.domain.timeutil import parse_rfc3339
from meterline.guard import AccessGuard

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
GUARD_CALLS = 1_000_000
console = Console(stderr=True)


def summary(samples_ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {
        "p50_ms": round(nearest_rank(ordered, 50) or 0.0, 3),
        "p99_ms": round(nearest_rank(ordered, 99) or 0.0, 3),
        "max_ms": round(ordered[-1], 3),
    }


def timed(send: Callable[[], httpx.Response], requests: int) -> tuple[list[float], list[float]]:
    """End-to-end and server-side (Server-Timing) milliseconds of `requests` sends, one at a time."""
    end_to_end, server = [], []
    for _ in range(requests):
        started = time.perf_counter()
        response = send()
        end_to_end.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        timing = response.headers.get("server-timing", "")
        if "dur=" in timing:
            server.append(float(timing.split("dur=", 1)[1]))
    return end_to_end, server


def set_limits(client: httpx.Client, ids: list[str]) -> None:
    """Half the customers past their hard limit (0 cents), half far from it."""

    def one(index: int) -> None:
        hard = 0 if index % 2 == 0 else 10**9
        client.post(
            "/v1/spend-limits/set", json={"customer_id": ids[index], "hard_limit": hard}
        ).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(len(ids))))
    wanted = {ids[i]: i % 2 == 1 for i in range(len(ids))}

    def settled() -> bool:
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            found = client.post("/v1/access/check", json={"customer_ids": chunk}).json()["data"]
            if any(d["has_access"] != wanted[d["customer_id"]] for d in found):
                return False
        return True

    wait_for(settled, bool, timeout_s=600, interval_s=0.5)


def customer_ids(client: httpx.Client, count: int) -> list[str]:
    found: list[str] = []
    cursor: str | None = None
    while len(found) < count:
        params: dict[str, Any] = {"limit": 100, **({"next_page": cursor} if cursor else {})}
        page = client.get("/v1/customers", params=params).json()
        found += [c["id"] for c in page["data"] if c["ingest_aliases"][:1] != [alias_for(0)]]
        cursor = page.get("next_page")
        if not cursor:
            break
    return found[:count]


def checks(
    client: httpx.Client, ids: list[str], requests: int, rng: random.Random, server_pid: int
) -> dict[str, Any]:
    health_e2e, _ = timed(lambda: client.get("/health"), requests)
    baseline = nearest_rank(sorted(health_e2e), 50) or 1e-9
    results: dict[str, Any] = {"baseline_health": summary(health_e2e)}
    for size in (1, 100):
        # ids and aliases mixed, as applications send them
        refs = [*ids, *(alias_for(i) for i in range(1, len(ids) + 1))]
        picks = [[rng.choice(refs) for _ in range(size)] for _ in range(64)]
        bodies = [json.dumps({"customer_ids": p}).encode() for p in picks]
        counter = iter(range(10**9))

        def send(bodies: list[bytes] = bodies, counter: Any = counter) -> httpx.Response:
            return client.post("/v1/access/check", content=bodies[next(counter) % len(bodies)])

        cpu_before = cpu_seconds([server_pid])
        end_to_end, server = timed(send, requests)
        api_cpu_s = cpu_seconds([server_pid]) - cpu_before
        results[f"check_{size}"] = {
            "end_to_end": summary(end_to_end),
            "server": summary(server),
            # The API process's CPU a check, every thread (HTTP, middleware, the reads, the
            # answer; the engine runs in processes of its own): far less moved by other load
            # than any latency.
            "api_cpu_ms_per_request": round(api_cpu_s * 1000 / requests, 3),
            "end_to_end_p50_to_health_p50": round((nearest_rank(sorted(end_to_end), 50) or 0) / baseline, 2),
        }
    return results


def guard_decision_ns(server: RunningServer, ids: list[str]) -> float:
    watched = ids[:100]
    with AccessGuard(server.base_url, server.token, watched) as guard:
        if not guard.wait_ready(30):
            raise RuntimeError("the guard did not get its first decisions")
        started = time.perf_counter()
        for index in range(GUARD_CALLS):
            guard.has_access(watched[index % 100])
        return (time.perf_counter() - started) * 1e9 / GUARD_CALLS


def disk_flush(directory: Path, times: int = 500) -> dict[str, float]:
    """The floor under a durable commit: appending 4 KiB to a file and `fsync` it, `times` times."""
    path = directory / "flush-baseline"
    samples = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(times):
            os.write(fd, b"\0" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return summary(samples)


def batch_sizes(client: httpx.Client) -> tuple[float, float]:
    """(requests, commits) the server's reservation writer has answered so far (`/metrics`)."""
    found = {"sum": 0.0, "count": 0.0}
    for line in client.get("/metrics").text.splitlines():
        for kind in found:
            if line.startswith(f"meterline_reservation_batch_requests_{kind} "):
                found[kind] += float(line.split()[1])
    return found["sum"], found["count"]


PARTS_METRIC = "meterline_reservation_batch_part_seconds"


def batch_parts(client: httpx.Client) -> dict[str, dict[str, float]]:
    """The reservation batches' parts so far (`/metrics`): by part, its histogram's cumulative
    bucket counts by upper bound ("+Inf" included), its "sum" and "count"."""
    found: dict[str, dict[str, float]] = {}
    for line in client.get("/metrics").text.splitlines():
        if not line.startswith(PARTS_METRIC):
            continue
        name, value = line.rsplit(" ", 1)
        labels = dict(re.findall(r'(\w+)="([^"]*)"', name))
        kind = name[len(PARTS_METRIC) + 1 :].split("{", 1)[0]
        key = labels.get("le", kind) if kind == "bucket" else kind
        if kind in ("bucket", "sum", "count"):
            part = found.setdefault(labels["part"], {})
            part[key] = part.get(key, 0.0) + float(value)
    return found


def parts_between(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Each part's mean, the bucket bound its 99th percentile falls under, and its share over 5 ms."""
    result = {}
    for part, now in after.items():
        then = before.get(part, {})
        moved = {key: now[key] - then.get(key, 0.0) for key in now}
        count = moved.get("count", 0.0)
        if not count:
            continue
        bounds = sorted((float(k), v) for k, v in moved.items() if k not in ("sum", "count"))
        p99 = next((bound for bound, seen in bounds if seen >= 0.99 * count), float("inf"))
        over_5ms = count - next(seen for bound, seen in bounds if bound >= 0.005)
        result[part] = {
            "mean_ms": round(moved["sum"] * 1000 / count, 3),
            "p99_under_ms": p99 * 1000,
            "over_5ms_share": round(over_5ms / count, 4),
        }
    return result


def reservations(server: RunningServer, ids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Reservations open loop at `rate` a second: the customers with room (`set_limits`: odd ones)."""
    port = int(server.base_url.rsplit(":", 1)[1])
    rng = random.Random(3)
    with_room = ids[1::2]
    bodies = [
        json.dumps(
            {
                "customer_id": rng.choice(with_room),
                "reservation_id": uuid.uuid4().hex,
                "amount": 1,
                "expires_in_seconds": 60,
            }
        ).encode()
        for _ in range(int(rate * seconds))
    ]
    requests = [encode_request(port, "/v1/access/reserve", server.token, body) for body in bodies]
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60) as client:
        before = batch_sizes(client)
        parts_before = batch_parts(client)
    cpu_before = cpu_seconds([server.process.pid])
    load = LoadProcess(
        port, requests, connections=16, duration_s=None, rate_per_s=rate, track_server_timing=True
    )
    while not load.done():
        time.sleep(0.05)
    result = load.result()
    api_cpu_s = cpu_seconds([server.process.pid]) - cpu_before
    if result.failures:
        raise RuntimeError(f"reservations failed: {result.first_failure}")
    started_ns = result.started_ns
    end_to_end = [(load.ack_ns[k] - started_ns) / 1e6 - k * 1000 / rate for k in range(len(requests))]
    server_side = [load.server_ms[k] for k in range(len(requests))]
    achieved = len(requests) / ((result.finished_ns - started_ns) / 1e9)
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60) as client:
        after = batch_sizes(client)
        parts = parts_between(parts_before, batch_parts(client))
    commits = after[1] - before[1]
    return {
        "rate_per_s": rate,
        "achieved_per_s": round(achieved),
        "requests_per_commit": round((after[0] - before[0]) / commits, 1) if commits else None,
        # The API process's CPU (every thread: HTTP, the batches, the commits) per reservation:
        # what bounds the rate one process sustains, and far less moved by other load than latency.
        "api_cpu_ms_per_request": round(api_cpu_s * 1000 / len(requests), 3),
        "server": summary(server_side),
        "end_to_end": summary(end_to_end),
        # Where the server side went: queued (waiting for a batch to start), begin (the write
        # lock), decide, commit; empty against a build without the metric.
        "batch_parts": parts,
    }


def capacity(server: RunningServer, client: httpx.Client, customers: int, seconds: float) -> float:
    """Events/s acknowledged and evaluated: closed-loop ingest over 16 connections for `seconds`,
    then until the engine has evaluated every acknowledged event (as bench/run.py counts it)."""
    port = int(server.base_url.rsplit(":", 1)[1])
    batches = throughput_batches(customers, 2_000_000, random.Random(1))
    requests = [encode_request(port, "/v1/ingest", server.token, b.body) for b in batches]
    started = time.monotonic()
    load = LoadProcess(port, requests, connections=16, duration_s=seconds, track_acks=False)
    while not load.done():
        time.sleep(0.05)
    acked = load.result().acked * EVENTS_PER_BATCH
    wait_caught_up(client)
    return acked / (time.monotonic() - started)


def ack_to_denied(
    server: RunningServer, client: httpx.Client, ids: list[str], probes: int, capacity_s: float
) -> dict[str, Any]:
    """Probes on customers the load never touches: the load goes to the first half of the aliases."""
    full = capacity(server, client, len(ids) // 2, capacity_s)
    rate = full / 2
    port = int(server.base_url.rsplit(":", 1)[1])
    batches = throughput_batches(len(ids) // 2, int(rate * 600), random.Random(2))
    requests = [encode_request(port, "/v1/ingest", server.token, b.body) for b in batches]
    load = LoadProcess(
        port, requests, connections=16, duration_s=600, rate_per_s=rate / EVENTS_PER_BATCH, track_acks=False
    )
    probes_found: list[tuple[float, float]] = []
    try:
        time.sleep(2)  # the load settles
        before = engine_batches(client)
        for index in range(probes):
            probes_found.append(one_probe(client, len(ids) // 2 + 1 + index))
        after = engine_batches(client)
    finally:
        load.process.kill()
    denied = [d for _e, d in probes_found]
    return {
        "capacity_events_per_s": round(full),
        "load_events_per_s": round(rate),
        **summary(denied),
        "evaluated": summary([e for e, _d in probes_found]),
        "denied_after_evaluated": summary([d - e for e, d in probes_found]),
        "engine_batches": batches_between(before, after),
    }


def one_probe(client: httpx.Client, index: int) -> tuple[float, float]:
    """A hard limit 1 cent above the customer's spend, in force; then one event (2 cents) past it.
    The milliseconds from the event's acknowledgement to the first check whose `as_of` has passed
    it (the engine's batch that evaluated it has committed; `as_of` is written to the millisecond),
    and to the first that says `has_access: false`."""
    alias = alias_for(index)
    found = customer_by_alias(client, alias)
    assert found is not None, alias
    limits = client.post("/v1/spend-limits/get", json={"customer_id": found["id"]}).json(parse_float=Decimal)
    hard = limits["data"]["current_spend"] + 1
    set_at = datetime.now(UTC)
    client.post(
        "/v1/spend-limits/set", json={"customer_id": found["id"], "hard_limit": str(hard)}
    ).raise_for_status()
    # In force once measured: the decision's as_of passes the change (an unmeasured limit holds it back).
    wait_for(
        lambda: check(client, alias),
        lambda d: d["has_access"] and parse_rfc3339(d["as_of"]) > set_at,
        timeout_s=30,
        interval_s=0.005,
    )
    event = {
        "transaction_id": uuid.uuid4().hex,
        "customer_id": alias,
        "event_type": EVENT_TYPE,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    client.post("/v1/ingest", json=[event]).raise_for_status()
    acked = time.perf_counter()
    acked_at = datetime.now(UTC) - timedelta(milliseconds=1)
    evaluated: float | None = None
    while True:
        decision = check(client, alias)
        waited = (time.perf_counter() - acked) * 1000
        if evaluated is None and parse_rfc3339(decision["as_of"]) >= acked_at:
            evaluated = waited
        if not decision["has_access"]:
            return (waited if evaluated is None else evaluated), waited
        if waited > 30_000:
            raise RuntimeError(f"{alias} was not denied within 30 s")
        time.sleep(0.001)  # polling flat out would take a core from the engine it waits for


def engine_batches(client: httpx.Client) -> dict[str, float]:
    """The engine's batches so far (`/metrics`): how many, their seconds, their events, and how
    many took at most each bucket's bound."""
    found: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith(
            (
                "meterline_evaluator_batch_seconds",
                "meterline_evaluator_events_total",
                "meterline_evaluator_batch_part_seconds_total",
            )
        ):
            found[name] = found.get(name, 0.0) + float(value)
    return found


def batches_between(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """The engine's batches meanwhile: how many, their mean wall time and events, the share that
    took longer than 25, 50 and 100 ms, and the mean wall time of each part of a batch."""

    def moved(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    count = moved("meterline_evaluator_batch_seconds_count")
    if not count:
        return {"batches": 0}
    longer = {
        f"over_{int(bound * 1000)}_ms": round(
            1 - moved(f'meterline_evaluator_batch_seconds_bucket{{le="{bound}"}}') / count, 3
        )
        for bound in (0.025, 0.05, 0.1)
    }
    parts = {
        f"{part}_mean_ms": round(
            moved(f'meterline_evaluator_batch_part_seconds_total{{part="{part}"}}') / count * 1000, 1
        )
        for part in ("read", "fold", "measure", "rest", "commit")
    }
    return {
        "batches": int(count),
        "mean_ms": round(moved("meterline_evaluator_batch_seconds_sum") / count * 1000, 1),
        "events_per_batch": round(moved("meterline_evaluator_events_total") / count),
        **longer,
        **parts,
    }


def check(client: httpx.Client, alias: str) -> dict[str, Any]:
    found: dict[str, Any] = client.post("/v1/access/check", json={"customer_ids": [alias]}).json()["data"][0]
    return found


def shared_with(others: OtherWork, server: RunningServer, on_postgres: bool) -> str:
    """What else used the cores: every process but this bench's and its server's."""
    found = others.describe(set(tree(os.getpid())) | set(tree(server.process.pid)))
    return found + (" (postgres: the server this bench uses among them)" if on_postgres else "")


def wait_caught_up(client: httpx.Client) -> None:
    wait_for(lambda: client.get("/health").json()["evaluator"]["lag_events"], lambda lag: lag == 0, 600, 0.2)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--capacity-seconds", type=float, default=8.0)
    parser.add_argument("--reserve-rates", default="100,1000", help="reservations a second, comma-separated")
    parser.add_argument("--reserve-seconds", type=float, default=10.0)
    parser.add_argument("--no-load", action="store_true", help="skip ack -> has_access: false")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only where a check of 100 customers spends its CPU (`--requests` checks, in this process)",
    )
    parser.add_argument(
        "--pair",
        nargs=2,
        metavar=("A_PYTHON", "B_PYTHON"),
        help="two builds' interpreters: checks and reservations, A B B A, on copies of one seeded database",
    )
    parser.add_argument("--a-env", action="append", default=[], help="KEY=VALUE for A's servers only")
    parser.add_argument("--b-env", action="append", default=[], help="KEY=VALUE for B's servers only")
    parser.add_argument("--pair-rounds", type=int, default=1, help="how many A B B A rounds")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="meterline-access-"))
    postgres = os.environ.get("METERLINE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES) if args.postgres else None
    databases = BenchDatabases(workdir, postgres)
    results: dict[str, Any] = {"database": databases.kind, "customers": args.customers, "machine": machine()}
    server: RunningServer | None = None
    try:
        seeded = seed(
            databases.new("seed"),
            workdir,
            args.customers,
            Plan(1000),
            console=console,
            server_env=databases.server_env,
        )
        server = start_server(
            seeded.database_url, workdir, token=seeded.token, port=None, **databases.server_env
        )
        with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60) as client:
            ids = customer_ids(client, args.customers - 1)
            set_limits(client, ids)
            wait_caught_up(client)
            others = OtherWork()
            if args.pair:
                server.stop()  # a database is copied only while no server uses it
                server = None
                builds = {
                    # Absolute (servers start in a folder of their own), not resolved: a venv's python is a
                    # link whose target lies outside the venv.
                    "A": (os.path.abspath(args.pair[0]), dict(e.split("=", 1) for e in args.a_env)),
                    "B": (os.path.abspath(args.pair[1]), dict(e.split("=", 1) for e in args.b_env)),
                }
                results["pairs"] = pair_builds(
                    databases, seeded.database_url, seeded.token, ids, builds, args
                )
                results["shared_with"] = others.describe({os.getpid()})
                return _done(results)
            if args.profile:
                refs = [*ids, *(alias_for(i) for i in range(1, len(ids) + 1))]
                results["check_profile"] = profile_checks(seeded.database_url, refs, args.requests)
                results["http_profile"] = profile_http(seeded.database_url, seeded.token, refs, args.requests)
                results["shared_with"] = shared_with(others, server, postgres is not None)
                return _done(results)
            results.update(checks(client, ids, args.requests, random.Random(0), server.process.pid))
            results["guard_has_access_ns"] = round(guard_decision_ns(server, ids), 1)
            results["disk_flush"] = disk_flush(workdir)
            results["reserve"] = [
                reservations(server, ids, float(rate), args.reserve_seconds)
                for rate in args.reserve_rates.split(",")
            ]
            if not args.no_load:
                results["ack_to_denied"] = ack_to_denied(
                    server, client, ids, args.probes, args.capacity_seconds
                )
            results["shared_with"] = shared_with(others, server, postgres is not None)
    finally:
        if server is not None:
            server.stop()
        databases.close()
    return _done(results)


def pair_builds(
    databases: BenchDatabases,
    seeded_url: str,
    token: str,
    ids: list[str],
    builds: dict[str, tuple[str, dict[str, str]]],
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """The checks and reservations against a server of each build in turn, A B B A, each on a
    fresh copy of the seeded database (no seeding between them, so the load drifts less)."""
    runs = []
    for index, name in enumerate(["A", "B", "B", "A"] * args.pair_rounds):
        python, env = builds[name]
        copy = databases.copy(seeded_url, f"pair{index}")
        load_before = os.getloadavg()[0]
        server = start_server(
            copy, databases.workdir, token=token, port=None, python=python, **databases.server_env, **env
        )
        try:
            with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60) as client:
                run: dict[str, Any] = {"build": name, "python": python, "env": env}
                run.update(checks(client, ids, args.requests, random.Random(index), server.process.pid))
                run["disk_flush"] = disk_flush(databases.workdir)
                rates = [r for r in args.reserve_rates.split(",") if r]
                run["reserve"] = [reservations(server, ids, float(r), args.reserve_seconds) for r in rates]
        finally:
            server.stop()
            databases.drop(copy)
        run["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        runs.append(run)
        console.print(f"run {index + 1}: {_pair_row(run)}")
    return runs


def _pair_row(run: dict[str, Any]) -> str:
    checks_part = "; ".join(
        f"check {size}: API CPU {run[f'check_{size}']['api_cpu_ms_per_request']} ms, server p50/p99 "
        f"{run[f'check_{size}']['server']['p50_ms']}/{run[f'check_{size}']['server']['p99_ms']} ms"
        for size in (1, 100)
    )
    reserve_part = "; ".join(
        f"reserve at {r['rate_per_s']:,.0f}/s: achieved {r['achieved_per_s']}, {r['requests_per_commit']} a "
        f"commit, API CPU {r['api_cpu_ms_per_request']} ms, server p50/p99 {r['server']['p50_ms']}/"
        f"{r['server']['p99_ms']} ms, end to end p99 {r['end_to_end']['p99_ms']} ms"
        + "".join(
            f", {part} mean {p['mean_ms']} ms p99 <= {p['p99_under_ms']:g} ms ({p['over_5ms_share']:.1%} > 5 ms)"
            for part, p in r.get("batch_parts", {}).items()
        )
        for r in run["reserve"]
    )
    flush = run["disk_flush"]
    return (
        f"{run['build']} {run['env'] or ''} (load {run['load_average'][0]} -> {run['load_average'][1]}): "
        f"{checks_part}; fsync p50/p99 {flush['p50_ms']}/{flush['p99_ms']} ms; {reserve_part}"
    )


def _done(results: dict[str, Any]) -> dict[str, Any]:
    if "pairs" in results:
        for run in results["pairs"]:
            console.print(_pair_row(run))
        console.print(results["shared_with"])
    elif "check_profile" in results:
        _print_profile(results)
    else:
        _print(results)
    print(json.dumps(results))
    return results


def _print_profile(results: dict[str, Any]) -> None:
    for key, what in (
        ("check_profile", "the handler's work, this thread's clock"),
        ("http_profile", "the whole app in process, every thread's clock"),
    ):
        found = results[key]
        table = Table(
            title=f"a check of 100 customers ({results['database']}): {found['cpu_ms_per_check']} ms of CPU "
            f"(mean of {found['checks']:,}, {what})"
        )
        for column in ("part", "share (profiled)", "CPU ms (share x plain)"):
            table.add_column(column, justify="right" if column != "part" else "left")
        for part in found["parts"]:
            table.add_row(part["part"], f"{part['share']:.1%}", f"{part['cpu_ms']:.3f}")
        console.print(table)
        console.print(
            "time of their own (profiled): "
            + ", ".join(f"{t['function']} {t['own_share']:.1%}" for t in found["top"])
        )
        if "each_check" in found:
            each = found["each_check"]
            console.print(
                f"each check alone: wall p50/p99 {each['wall']['p50_ms']}/{each['wall']['p99_ms']} ms, "
                f"CPU p50/p99 {each['cpu']['p50_ms']}/{each['cpu']['p99_ms']} ms; preempted in "
                f"{each['preempted_share']:.1%}, wall p50/p99 of the others "
                f"{each['wall_not_preempted']['p50_ms']}/{each['wall_not_preempted']['p99_ms']} ms"
            )
    console.print(results["shared_with"])


def _print(results: dict[str, Any]) -> None:
    table = Table(title=f"access decisions ({results['database']}, {results['customers']:,} customers)")
    for column in ("measure", "p50 ms", "p99 ms", "max ms", "p50 / health p50"):
        table.add_column(column, justify="right")
    health = results["baseline_health"]
    table.add_row(
        "baseline: GET /health, end to end",
        f"{health['p50_ms']}",
        f"{health['p99_ms']}",
        f"{health['max_ms']}",
        "1.00",
    )
    for size in (1, 100):
        found = results[f"check_{size}"]
        for side in ("server", "end_to_end"):
            row = found[side]
            ratio = f"{found['end_to_end_p50_to_health_p50']:.2f}" if side == "end_to_end" else ""
            cpu = f", API CPU {found['api_cpu_ms_per_request']} ms each" if side == "server" else ""
            table.add_row(
                f"check, {size} customer(s){cpu}, {side.replace('_', ' ')}",
                f"{row['p50_ms']}",
                f"{row['p99_ms']}",
                f"{row['max_ms']}",
                ratio,
            )
    flush = results["disk_flush"]
    table.add_row(
        "baseline: fsync of 4 KiB beside the database",
        f"{flush['p50_ms']}",
        f"{flush['p99_ms']}",
        f"{flush['max_ms']}",
        "",
    )
    for found in results["reserve"]:
        for side in ("server", "end_to_end"):
            row = found[side]
            table.add_row(
                f"reserve at {found['rate_per_s']:,.0f}/s (achieved {found['achieved_per_s']:,}, "
                f"{found['requests_per_commit']} a commit, API CPU {found['api_cpu_ms_per_request']} ms "
                f"each), {side.replace('_', ' ')}",
                f"{row['p50_ms']}",
                f"{row['p99_ms']}",
                f"{row['max_ms']}",
                f"p99 / fsync p99 {row['p99_ms'] / flush['p99_ms']:.1f}" if flush["p99_ms"] else "",
            )
    if "ack_to_denied" in results:
        found = results["ack_to_denied"]
        table.add_row(
            f"ack -> has_access false, ingest at {found['load_events_per_s']:,} events/s (half of {found['capacity_events_per_s']:,})",
            f"{found['p50_ms']}",
            f"{found['p99_ms']}",
            f"{found['max_ms']}",
            "",
        )
        for part, label in (
            ("evaluated", "ack -> as_of past it"),
            ("denied_after_evaluated", "then -> denied"),
        ):
            row = found[part]
            table.add_row(
                f"  of which {label}", f"{row['p50_ms']}", f"{row['p99_ms']}", f"{row['max_ms']}", ""
            )
    console.print(table)
    for found in results["reserve"]:
        console.print(
            f"reserve at {found['rate_per_s']:,.0f}/s, the batches' parts: "
            + ", ".join(
                f"{part} mean {p['mean_ms']} ms, p99 <= {p['p99_under_ms']:g} ms, {p['over_5ms_share']:.1%} > 5 ms"
                for part, p in found["batch_parts"].items()
            )
        )
    console.print(f"AccessGuard.has_access: {results['guard_has_access_ns']} ns a decision")
    if "ack_to_denied" in results:
        console.print(f"the engine's batches meanwhile: {results['ack_to_denied']['engine_batches']}")
    console.print(results["shared_with"])


if __name__ == "__main__":
    main()
