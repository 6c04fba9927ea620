"""One engine against several on one PostgreSQL: evaluated events/s, CPU per event, the bound.

The bench's customers (contract, commit, three alerts each) are seeded once; for each engine
count, a copy of that database gets an API server started with `--no-engine` and that many
`meterline engine` processes, which share the event log's partitions by lease. Once every
partition is held, batches of 100 events spread uniformly over the customers are posted
closed-loop for `--seconds`; the run ends when the lowest partition position reaches the last
event. The clock starts at the first request.

Reported per engine count: events/s acknowledged, events/s acknowledged and evaluated, and the
CPU each side spent per event (the engines' process trees, the API server, every PostgreSQL
process), read from /proc before and after the load: whichever is near a whole core per
core available is the bound. Everything else running on the machine shares the same cores:
the report says how loaded it was (the load average before the first run).

    python bench/engines.py [--customers 1000] [--engines 1 2] [--seconds 20] [--connections 16]

PostgreSQL: METERLINE_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
The last stdout line is a JSON object with one entry per engine count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table
from tests.support.server import RunningServer, start_engine, start_server, stop_process
from tests.support.waiting import wait_for

from bench.bodies import EVENTS_PER_BATCH, throughput_batches
from bench.databases import BenchDatabases
from bench.loadgen import LoadProcess, encode_request
from bench.plan import Plan
from bench.seed import SeedResult, seed
from meterline.domain.partitions import PARTITION_COUNT
from meterline.store import event_log, partitions
from meterline.store.db import Database

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
console = Console(stderr=True)


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of these processes (their own, not their children's)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS_PER_S


def _processes() -> Iterator[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        yield int(entry.name), ppid, name


def tree(root: int) -> list[int]:
    """`root` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for pid, ppid, _name in _processes():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def postgres_pids() -> list[int]:
    return [pid for pid, _ppid, name in _processes() if name.startswith("postgres")]


class Progress:
    """How far the engines have got: who holds the partitions, and the lowest position against
    the log's end."""

    def __init__(self, url: str):
        self.db = Database(url, pool_size=1)

    def holders(self) -> dict[str | None, int]:
        with self.db.read() as conn:
            return partitions.holders(conn)

    def caught_up(self) -> bool:
        with self.db.log_read() as log:
            last = event_log.last_seq(log)
        with self.db.read() as conn:
            return min(partitions.positions(conn).values()) >= last

    def close(self) -> None:
        self.db.dispose()


@contextmanager
def engines(
    url: str, count: int, workdir: Path, env: dict[str, str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [
        start_engine(url, workdir / f"engine-{n}.log", METERLINE_WEBHOOKS_ENABLED="false", **env)
        for n in range(count)
    ]
    try:
        yield started
    finally:
        for process in started:
            stop_process(process, 30)


def one_run(
    databases: BenchDatabases, seeded: SeedResult, count: int, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    url = databases.copy(seeded.database_url, f"engines{count}")
    progress = Progress(url)
    api: RunningServer | None = None
    try:
        api = start_server(
            url,
            workdir,
            token=seeded.token,
            port=None,
            METERLINE_EVALUATOR_ENABLED="false",
            METERLINE_WEBHOOKS_ENABLED="false",
            **databases.server_env,
        )
        with engines(url, count, workdir, databases.server_env) as running:

            def all_held() -> bool:
                owners = progress.holders()
                return None not in owners and len(owners) == count and sum(owners.values()) == PARTITION_COUNT

            wait_for(all_held, bool, timeout_s=120)
            batches = throughput_batches(seeded.customers, args.max_events, random.Random(count))
            port = int(api.base_url.rsplit(":", 1)[1])
            requests = [encode_request(port, "/v1/ingest", api.token, b.body) for b in batches]
            engine_pids = [pid for p in running for pid in tree(p.pid)]
            watched = {"engines": engine_pids, "api": tree(api.process.pid), "postgresql": postgres_pids()}
            before = {side: cpu_seconds(pids) for side, pids in watched.items()}
            load = LoadProcess(port, requests, connections=args.connections, duration_s=args.seconds)
            while not load.done():
                time.sleep(0.01)
            result = load.result()
            wait_for(progress.caught_up, bool, timeout_s=1800, interval_s=0.1)
            evaluated_ns = time.time_ns()
            spent = {side: cpu_seconds(pids) - before[side] for side, pids in watched.items()}
    finally:
        progress.close()
        if api is not None:
            api.kill()
        databases.drop(url)
    acked = result.acked * EVENTS_PER_BATCH
    last_ack = max((t for t in load.ack_ns if t), default=result.started_ns)
    return {
        "engines": count,
        "acked_events": acked,
        "acked_events_per_s": round(acked / max((last_ack - result.started_ns) / 1e9, 1e-9)),
        "evaluated_events_per_s": round(acked / max((evaluated_ns - result.started_ns) / 1e9, 1e-9)),
        "cpu_us_per_event": {
            side: round(seconds * 1e6 / max(acked, 1), 1) for side, seconds in spent.items()
        },
        "failures": dict(result.failures),
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--engines", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-events", type=int, default=2_000_000, help="events built for each run")
    parser.add_argument("--events-per-customer", type=int, default=1000)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="meterline-engines-"))
    url = os.environ.get("METERLINE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    databases = BenchDatabases(workdir, url)
    try:
        seed_url = databases.new("seed")
        seeded = seed(
            seed_url,
            workdir,
            args.customers,
            Plan(args.events_per_customer),
            console=console,
            server_env=databases.server_env,
        )
        runs = [one_run(databases, seeded, count, args, workdir) for count in args.engines]
    finally:
        databases.close()
    _print(runs, load_before)
    print(json.dumps({"load_average_before": load_before[0], "runs": runs}))
    return runs


def _print(runs: list[dict[str, Any]], load_before: tuple[float, float, float]) -> None:
    table = Table(title=f"engines on one PostgreSQL (load average before: {load_before[0]:.2f})")
    for column in (
        "engines",
        "acked/s",
        "evaluated/s",
        "ratio to 1 engine",
        "CPU µs/event: engines, API, PostgreSQL",
    ):
        table.add_column(column, justify="right")
    base = runs[0]["evaluated_events_per_s"] or 1
    for run in runs:
        cpu = run["cpu_us_per_event"]
        table.add_row(
            str(run["engines"]),
            f"{run['acked_events_per_s']:,}",
            f"{run['evaluated_events_per_s']:,}",
            f"{run['evaluated_events_per_s'] / base:.2f}",
            f"{cpu['engines']}, {cpu['api']}, {cpu['postgresql']}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
