"""The API process's CPU per acknowledged event: ingest alone, no engine, under the bench's load.

A real `meterline serve` with its engine off (`METERLINE_EVALUATOR_ENABLED=false`,
`METERLINE_WEBHOOKS_ENABLED=false`) on a fresh database; the load generator (a process of its
own) posts `--bodies` batches of 100 uuid4-keyed events, closed loop over `--connections`
keep-alive connections, as workload (a) does. The server's CPU (user + system, every thread,
from /proc) before and after is divided by the events acknowledged: what each event takes from
the cores the engine shares. On PostgreSQL the database server's processes are counted apart.
CPU time hardly moves with what else the machine runs; the wall rate does, and is printed too.

`--pair A_PYTHON B_PYTHON` compares two builds (each interpreter one checkout's), in the order
A, B, B, A, each on a fresh database made by its own build.

    python bench/ingest_cost.py [--bodies 4000] [--connections 16] [--database sqlite|postgresql]
    python bench/ingest_cost.py --pair A_PYTHON B_PYTHON [--rounds 1]
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
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from tests.support.server import server_env, start_server, stop_process

from bench.bodies import EVENTS_PER_BATCH, throughput_batches
from bench.engines import cpu_seconds, postgres_pids, tree
from bench.loadgen import LoadProcess, LoadResult, encode_request

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
NO_ENGINE = {"METERLINE_EVALUATOR_ENABLED": "false", "METERLINE_WEBHOOKS_ENABLED": "false"}
console = Console(stderr=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bodies", type=int, default=4000, help="batches of 100 events posted per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--customers", type=int, default=1000, help="customer refs the events name")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pair", nargs=2, metavar=("A_PYTHON", "B_PYTHON"))
    parser.add_argument("--rounds", type=int, default=1, help="A B B A rounds with --pair")
    args = parser.parse_args()
    batches = throughput_batches(args.customers, args.bodies * EVENTS_PER_BATCH, random.Random(14))
    bodies = [b.body for b in batches]
    order = ["A", "B", "B", "A"] * args.rounds if args.pair else ["B"]
    pythons = {"A": args.pair[0], "B": args.pair[1]} if args.pair else {"B": sys.executable}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, build in enumerate(order):
            python = os.path.abspath(pythons[build])  # not resolved: a venv's python is a link
            run = one_run(python, bodies, args, Path(tmp), index)
            run["build"] = build
            runs.append(run)
            console.print(_row(run))
    print(json.dumps({"runs": runs, "load_average": os.getloadavg()[0]}))


def one_run(
    python: str, bodies: list[bytes], args: argparse.Namespace, tmp: Path, index: int
) -> dict[str, Any]:
    url, drop = _fresh_database(args.database, tmp, index)
    try:
        token = _prepare(python, url)
        server = start_server(
            url,
            tmp,
            token=token,
            python=python,
            METERLINE_EVALUATOR_ENABLED="false",
            METERLINE_WEBHOOKS_ENABLED="false",
        )
        try:
            requests = [encode_request(0, "/v1/ingest", token, body) for body in bodies]
            port = int(server.base_url.rsplit(":", 1)[1])
            # Warm-up, not counted: connections, first statements, the page cache.
            _finished(LoadProcess(port, requests[:200], connections=args.connections, duration_s=None))
            pids = tree(server.process.pid)
            database_pids = postgres_pids() if args.database == "postgresql" else []
            load_before = os.getloadavg()[0]
            cpu_before, db_before = cpu_seconds(pids), cpu_seconds(database_pids)
            started = time.perf_counter()
            result = _finished(
                LoadProcess(port, requests[200:], connections=args.connections, duration_s=None)
            )
            wall = time.perf_counter() - started
            cpu, db_cpu = cpu_seconds(pids) - cpu_before, cpu_seconds(database_pids) - db_before
        finally:
            stop_process(server.process, 15)
    finally:
        drop()
    events = result.acked * EVENTS_PER_BATCH
    return {
        "python": python,
        "events": events,
        "failures": dict(result.failures),
        "server_us_per_event": round(cpu / events * 1e6, 2),
        "database_us_per_event": round(db_cpu / events * 1e6, 2) if database_pids else None,
        "events_per_s": round(events / wall),
        "load_average": round(load_before, 2),
    }


def _finished(load: LoadProcess) -> LoadResult:
    while not load.done():
        time.sleep(0.05)
    return load.result()


def _fresh_database(kind: str, tmp: Path, index: int) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{tmp}/ingest{index}.db", lambda: None
    base = os.environ.get("METERLINE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    name = f"ingest_cost_{uuid.uuid4().hex[:12]}"
    _psql(base, f"CREATE DATABASE {name}")
    return base.rsplit("/", 1)[0] + f"/{name}", lambda: _psql(base, f"DROP DATABASE {name} WITH (FORCE)")


def _psql(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def _prepare(python: str, url: str) -> str:
    """The build's own migrations and an API token, by its own CLI."""
    env = server_env(url, **NO_ENGINE)
    subprocess.run([python, "-m", "meterline.cli", "migrate"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [python, "-m", "meterline.cli", "tokens", "create", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip().split()[-1]


def _row(run: dict[str, Any]) -> str:
    database = (
        f", database {run['database_us_per_event']} µs" if run["database_us_per_event"] is not None else ""
    )
    return (
        f"{run['build']}: server {run['server_us_per_event']} µs CPU an event{database}; "
        f"{run['events_per_s']:,} events/s acknowledged ({run['events']:,} events, failures {run['failures']}); "
        f"load average {run['load_average']}"
    )


if __name__ == "__main__":
    main()
