"""What reading hour rows costs (`store.usage.hourly_rows`): the usage list's HOUR and DAY windows
and pricing over a period that is not a calendar month read them.

On a database seeded by `python -m bench.seed` and given stored usage by `python -m bench.month_usage`,
reads the hour rows of the bench's metric for customers drawn at random: one customer over the last
25 hours (cold: its pages read for the first time), the same customers again over the last 31 days
(warm), and 100 customers at a time over the last 25 hours. Prints thread CPU and wall time per call.

    python bench/usage_reads.py --seeded DIR/seed.db
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from meterline.domain.timeutil import US_PER_HOUR, hour_floor, now_us
from meterline.store import usage
from meterline.store.db import Database

READS = (
    ("1 customer, 25 h (cold)", 25, 1, 200),
    ("1 customer, 744 h", 744, 1, 200),
    ("100 customers, 25 h", 25, 100, 4),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeded", type=Path, required=True)
    args = parser.parse_args()
    db = Database(f"sqlite:///{args.seeded}")
    with db.read() as conn:
        metric = conn.exec_driver_sql("SELECT id FROM billable_metrics ORDER BY id LIMIT 1").scalar_one()
        ids = [r[0] for r in conn.exec_driver_sql("SELECT id FROM customers")]
    chosen = random.Random(3).sample(ids, 400)
    end = hour_floor(now_us()) + US_PER_HOUR
    found = {}
    for name, hours, per_call, calls in READS:
        cpu = wall = 0.0
        rows = 0
        with db.read() as conn:
            for i in range(calls):
                customers = chosen[i * per_call : (i + 1) * per_call]
                started, started_wall = time.thread_time(), time.perf_counter()
                rows += sum(
                    1 for _ in usage.hourly_rows(conn, customers, [metric], end - hours * US_PER_HOUR, end)
                )
                cpu += time.thread_time() - started
                wall += time.perf_counter() - started_wall
        found[name] = {
            "cpu_ms_per_call": round(cpu / calls * 1e3, 3),
            "wall_ms_per_call": round(wall / calls * 1e3, 3),
            "rows_per_call": rows / calls,
        }
    db.dispose()
    print(json.dumps(found))


if __name__ == "__main__":
    main()
