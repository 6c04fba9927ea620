"""The evaluator's cost as traffic spreads over customers, side by side in one run.

Runs `bench/evaluator_cost.py` (the evaluator alone on one thread, thread CPU time per event) on
three workloads, each with the engine's headrooms and without them (every customer a batch
touches measured in full, as before headrooms):
- 50 customers, 200 events each per batch of 10,000;
- 1,000 customers, 20 events each per batch of 20,000 (the baseline of the ratios);
- spread: batches of 10,000 events drawn uniformly over every customer of a database seeded by
  `python -m bench.seed` (about one event per customer per batch), given by --seeded or seeded
  here with --spread-customers (100,000 by default; 1,000,000 takes a few minutes to seed),
  once with the stored headrooms loaded first (as a running engine has them) and once cold (each
  read on its customer's first touch, as just after a start or a take-over).

Prints each workload's evaluated events per CPU-second and its ratio to the 1,000-customer rate
of the same engine, and a JSON summary as the last line. CPU time per thread does not move much
with what else the machine runs; the wall time (pages read from disk) does, and is shown too.

    python bench/spread.py [--seeded DIR/seed.db | --spread-customers N]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.machine import OtherWork

ROOT = Path(__file__).resolve().parent.parent
console = Console(stderr=True)


@dataclass(frozen=True)
class Workload:
    name: str
    args: tuple[str, ...]
    engines: tuple[bool, ...] = (True, False)  # with headrooms, without


def run(workload: Workload, headroom: bool) -> dict[str, Any]:
    command = [sys.executable, str(ROOT / "bench" / "evaluator_cost.py"), *workload.args]
    if not headroom:
        command += ["--headroom-customers", "0"]
    console.print(f"[dim]{' '.join(command[1:])}[/dim]")
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        console.print(done.stderr[-3000:])
        raise SystemExit(f"{workload.name}: evaluator_cost.py failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def seeded(customers: int, workdir: Path) -> Path:
    console.print(f"seeding {customers:,} customers (python -m bench.seed)")
    subprocess.run(
        [sys.executable, "-m", "bench.seed", "--customers", str(customers), "--workdir", str(workdir)],
        check=True,
        cwd=ROOT,
    )
    return workdir / "seed.db"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeded", type=Path, help="a database seeded by `python -m bench.seed`")
    parser.add_argument("--spread-customers", type=int, default=100_000, help="seeded here without --seeded")
    parser.add_argument("--spread-batches", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seed = args.seeded or seeded(args.spread_customers, Path(tmp))
        others = OtherWork()  # what else ran on the cores while the workloads did
        deployment = _customers_of(seed)
        spread = (
            "--seeded",
            str(seed),
            "--customers",
            str(deployment),
            "--batches",
            str(args.spread_batches),
            "--batch-events",
            "10000",
        )
        workloads = [
            Workload("50 customers", ("--customers", "50", "--batches", "10", "--batch-events", "10000")),
            Workload("1,000 customers", ("--customers", "1000", "--batches", "5", "--batch-events", "20000")),
            Workload(f"spread over {deployment:,}", spread),
            # Just after a start or a take-over: each customer's stored headroom read on its first
            # touch (the workload above runs once they are loaded, as a running engine has them).
            Workload(f"spread over {deployment:,}, cold", (*spread, "--cold"), engines=(True,)),
        ]
        results = {(w.name, h): run(w, h) for w in workloads for h in w.engines}
        shared_with = others.describe({os.getpid()})  # each run's process has exited by now
    report(workloads, results)
    console.print(shared_with)


def _customers_of(seed: Path) -> int:
    with sqlite3.connect(seed) as conn:
        return int(conn.execute("SELECT count(*) FROM customers").fetchone()[0])


def report(workloads: list[Workload], results: dict[tuple[str, bool], dict[str, Any]]) -> None:
    baseline = {h: results[("1,000 customers", h)]["evaluated_events_per_cpu_s"] for h in (True, False)}
    table = Table(title="evaluator CPU per event (one thread)")
    for column in (
        "workload",
        "engine",
        "µs CPU/event",
        "events/CPU-s",
        "ratio to 1,000",
        "wall µs/event",
        "absorbed",
    ):
        table.add_column(column, justify="left" if column in ("workload", "engine") else "right")
    summary = []
    for workload in workloads:
        for headroom in workload.engines:
            r = results[(workload.name, headroom)]
            ratio = r["evaluated_events_per_cpu_s"] / baseline[headroom]
            engine = "headrooms" if headroom else "every customer measured"
            table.add_row(
                workload.name,
                engine,
                f"{r['cpu_us_per_event']:.1f}",
                f"{r['evaluated_events_per_cpu_s']:,}",
                f"{ratio:.2f}",
                f"{r['wall_us_per_event']:.1f}",
                f"{r['absorbed_per_event']:.2f}",
            )
            summary.append({"workload": workload.name, "headrooms": headroom, "ratio": round(ratio, 3), **r})
    console.print(table)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
