"""What sealing an open hour costs (`store.usage.seal_open_hours`): its rows moved from the open
hours' table into `usage_hourly`, in the engine's chunks, thread CPU and wall time per row.

Run on a copy of a seeded database whose open hours' table holds an hour's rows (`python -m
bench.month_usage --seeded DIR/seed.db --hours 0 --current-hour` after the migrations): the copy
is changed.

    python bench/seal_cost.py --seeded DIR/copy.db [--chunks 5] [--rows 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meterline.domain.timeutil import US_PER_HOUR
from meterline.store import usage
from meterline.store.db import Database


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeded", required=True)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20_000, help="rows a chunk (the engine's default)")
    args = parser.parse_args()
    db = Database(f"sqlite:///{args.seeded}", durable_commits=False)  # as the engine opens it
    with db.read() as conn:
        hour = usage.oldest_open_hour(conn)
    if hour is None:
        raise SystemExit("the open hours' table is empty")
    cpu = wall = 0.0
    for _ in range(args.chunks):
        started, started_wall = time.thread_time(), time.perf_counter()
        with db.write() as conn:
            usage.seal_open_hours(conn, hour + US_PER_HOUR, args.rows)
        cpu += time.thread_time() - started
        wall += time.perf_counter() - started_wall
    db.dispose()
    rows = args.chunks * args.rows
    print(
        json.dumps(
            {
                "rows": rows,
                "cpu_us_per_row": round(cpu / rows * 1e6, 2),
                "wall_us_per_row": round(wall / rows * 1e6, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
