"""Where a durable, deduplicated append's time goes: the floor's own work, split by driver call.

The floor of `make bench` (and ingest's group commit) appends batches of 100 events with uuid4
transaction ids, `--group` batches per transaction, through `event_log.append`. This runs that
append on a fresh SQLite database, in this process, under cProfile, and splits its
time per event between the driver's calls: the dedup look-up (`execute`), the inserts of events
and dedup keys (`executemany`, or `COPY` on PostgreSQL) and the commit (on SQLite: writing the
pages the transaction dirtied to the WAL, and its fsync), the rest being Python. (On PostgreSQL
psycopg waits for the server in Python, so such a split would say little.)

`--prefill N` first stores N random dedup keys (sorted, in one transaction), so that the
appends meet an index the size of a long-running deployment's rather than an empty one.

    python bench/append_cost.py [--bodies 3200] [--group 16] [--prefill 0]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
import uuid

from rich.console import Console
from rich.table import Table

from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import now_us
from meterline.store import event_log
from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head

EVENTS_PER_BODY = 100
# Driver calls by what they do in an append (cProfile names C methods by their method name).
PARTS = {
    "commit": ("commit",),
    "dedup look-up": ("execute",),
    "inserts (events, dedup keys)": ("executemany",),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bodies", type=int, default=3200, help="batches of 100 events appended")
    parser.add_argument(
        "--group", type=int, default=16, help="batches per transaction (the bench keeps 16 in flight)"
    )
    parser.add_argument("--prefill", type=int, default=0, help="dedup keys stored before the appends")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/append.db")
        upgrade_to_head(db)
        _prefill(db, args.prefill)
        at = now_us()
        bodies = [
            [UsageEvent(str(uuid.uuid4()), "customer", "usage", at, {"n": i}) for i in range(EVENTS_PER_BODY)]
            for _ in range(args.bodies)
        ]
        plain_cpu = _plain_cpu(db, bodies[: len(bodies) // 2], args.group)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        appended = _append(db, bodies[len(bodies) // 2 :], args.group)
        profiler.disable()
        elapsed = time.perf_counter() - started
        db.dispose()
    split = _split(pstats.Stats(profiler), elapsed, appended)
    table = Table(
        title=f"{appended:,} events appended under cProfile, {args.group} batches of 100 per transaction"
    )
    table.add_column("part")
    table.add_column("µs per event", justify="right")
    table.add_column("share", justify="right")
    for part, us in split.items():
        table.add_row(part, f"{us:.2f}", f"{us / split['total'] * 100:.0f} %")
    Console(stderr=True).print(table)
    Console(stderr=True).print(f"without the profiler: {plain_cpu:.2f} µs of CPU per event")
    print(
        json.dumps(
            {
                "events_per_s": round(appended / elapsed),
                "cpu_us_per_event": round(plain_cpu, 2),
                **{k: round(v, 2) for k, v in split.items()},
            }
        )
    )


def _prefill(db: Database, keys: int) -> None:
    """`keys` random digests in the dedup index, as if appended long before (never purged: older
    than any event's, younger than the window)."""
    if not keys:
        return
    at = now_us()
    with db.log_write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO event_dedup (transaction_digest, event_seq, received_at_us) VALUES (?, 0, ?)",
            [(key, at) for key in sorted(os.urandom(16) for _ in range(keys))],
        )


def _append(db: Database, bodies: list[list[UsageEvent]], group: int) -> int:
    """Append the bodies `group` per transaction as the server's group commit does (with a build
    whose event log has no `append_batches`, one `append` per body, as its group commit did)."""
    appended = 0
    batches = getattr(event_log, "append_batches", None)
    for first in range(0, len(bodies), group):
        with db.log_write() as conn:
            if batches is not None:
                appended += sum(batches(conn, bodies[first : first + group], now_us()))
            else:
                for body in bodies[first : first + group]:
                    appended += event_log.append(conn, body, now_us())
    return appended


def _plain_cpu(db: Database, bodies: list[list[UsageEvent]], group: int) -> float:
    """µs of this thread's CPU per event appended, without the profiler (the first half of the
    bodies: the profiled half then appends to a log as large as this one has made it)."""
    started = time.thread_time()
    appended = _append(db, bodies, group)
    return (time.thread_time() - started) / appended * 1e6


def _split(stats: pstats.Stats, elapsed: float, events: int) -> dict[str, float]:
    """Seconds in each part's driver calls (their own time), per event in µs; Python is the rest."""
    seconds = dict.fromkeys(PARTS, 0.0)
    for (_file, _line, name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for part, methods in PARTS.items():
            if any(f"method '{m}'" in name for m in methods):
                seconds[part] += own
    split = {part: s / events * 1e6 for part, s in seconds.items()}
    split["Python (parsing aside: bodies are built up front)"] = elapsed / events * 1e6 - sum(split.values())
    split["total"] = elapsed / events * 1e6
    return split


if __name__ == "__main__":
    main()
