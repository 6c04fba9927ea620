"""Give every customer of a seeded database usage stored as a running month of traffic leaves it.

`python -m bench.seed` creates customers without usage, so the engine's usage upserts insert
into small tables; a deployment a month into traffic updates and inserts among millions of
rows. This writes, in place, for every customer and the bench's metric: the current calendar
month's row (usage_monthly) and an hour row (usage_hourly) for each of the `--hours` hours before
the current one (within the month). The counts are small (one event an hour, summed in the month's
row), far below the bench's thresholds, and folded at log position 0, so the stored headrooms still hold.
With `--current-hour` on a database whose engine keeps open hours apart (`usage_hourly_open`,
migration 0031), the current hour's rows are written there instead, where that engine keeps them
until the hour has passed.

    python -m bench.month_usage --seeded DIR/seed.db [--hours 24]
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

from meterline.domain.metrics import NO_GROUP
from meterline.domain.periods import calendar_month
from meterline.domain.timeutil import US_PER_HOUR, hour_floor, now_us


def add_month_of_usage(path: Path, hours: int, current_hour: bool = False) -> int:
    """Rows written, hour rows and month rows together."""
    now = now_us()
    month = calendar_month(hour_floor(now))
    first = max(month.start_us, hour_floor(now) - hours * US_PER_HOUR)
    # The current hour is left to the bench's events, unless asked for: then they update rows.
    last = hour_floor(now) - (0 if current_hour else US_PER_HOUR)
    conn = sqlite3.connect(path)
    try:
        (metric_id,) = conn.execute("SELECT id FROM billable_metrics ORDER BY id LIMIT 1").fetchone()
        aggregate = "1, '1', '1', '1', :at, 0"  # one event an hour
        events = max(0, (last - first) // US_PER_HOUR + 1)
        month_aggregate = f"{events}, '{events}', '1', '1', :at, 0"  # the month's hours summed
        hour_rows = (
            "WITH RECURSIVE hours(h) AS (SELECT :first UNION ALL SELECT h + :step FROM hours"
            " WHERE h + :step <= :last) "
            "INSERT OR IGNORE INTO {table} (customer_id, metric_id, hour_us, group_values,"
            " event_count, total, maximum, latest, latest_ts_us, latest_seq) "
            f"SELECT c.id, :metric, hours.h, :group, {aggregate} FROM customers c, hours ORDER BY c.id, hours.h"
        )
        params = {
            "first": first,
            "last": last,
            "step": US_PER_HOUR,
            "metric": metric_id,
            "group": NO_GROUP,
            "at": first,
        }
        with conn:
            if current_hour and _keeps_open_hours(conn):
                # The current hour's rows where that engine keeps them during the hour.
                conn.execute(hour_rows.format(table="usage_hourly_open"), {**params, "first": last})
                params["last"] = last - US_PER_HOUR
            if params["first"] <= params["last"]:
                conn.execute(hour_rows.format(table="usage_hourly"), params)
            conn.execute(
                "INSERT OR IGNORE INTO usage_monthly (customer_id, metric_id, period_start_us, group_values,"
                " period_end_us, event_count, total, maximum, latest, latest_ts_us, latest_seq, folded_seq) "
                f"SELECT c.id, :metric, :start, :group, :end, {month_aggregate}, 0 FROM customers c ORDER BY c.id",
                {
                    "metric": metric_id,
                    "start": month.start_us,
                    "end": month.end_us,
                    "group": NO_GROUP,
                    "at": first,
                },
            )
        written = conn.total_changes  # (a statement opening with WITH has no rowcount)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return written


def _keeps_open_hours(conn: sqlite3.Connection) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'usage_hourly_open'")
    return found.fetchone() is not None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeded", type=Path, required=True)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument(
        "--current-hour",
        action="store_true",
        help="a row in the current hour too, as every customer has one once spread traffic has "
        "reached it: the bench's events (a minute ago) then update hour rows instead of inserting them",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    written = add_month_of_usage(args.seeded, args.hours, args.current_hour)
    print(f"{written:,} usage rows written in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
