"""What the evaluator costs per event, in CPU time and in SQL statements, on one thread.

A profiling aid for the engine's hot path, free of HTTP, of the load generator and of whatever
else the machine runs: thread CPU time and statement counts do not move with other processes.
Creates the bench's customers (contract, commit, 3 alerts) on a fresh SQLite file with the real
app in-process, appends batches of events straight to the event log, and times
`Evaluator.run_once` on them.

    python bench/evaluator_cost.py [--customers 100] [--batches 20] [--batch-events 2000]
    python bench/evaluator_cost.py --seeded seed.db --customers 1000   # events to 1,000 of its customers
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import event, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.catalog import create_catalog, create_customer
from bench.plan import EVENT_TYPE, Plan, alias_for
from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import now_us
from meterline.engine import headroom
from meterline.engine.evaluator import Evaluator
from meterline.engine.snapshots import DEFAULT_CACHED_CUSTOMERS
from meterline.logging import configure_logging
from meterline.runtime.gc_tuning import tune_for_long_running
from meterline.runtime.server import create_app
from meterline.settings import Settings
from meterline.store import event_log, tables, tokens
from meterline.store.db import Database
from meterline.store.migrate import upgrade_to_head

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

console = Console(stderr=True)


def seed(url: str, customers: int, events_per_customer: int) -> None:
    db = Database(url)
    upgrade_to_head(db)
    with db.write() as conn:
        _id, token = tokens.create_token(conn, "bench")
    db.dispose()
    app = create_app(
        Settings(database_url=url, evaluator_enabled=False, engine_process=False, log_level="warning")
    )
    configure_logging("warning")
    plan = Plan(events_per_customer)
    with (
        TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client,
        Progress(console=console) as progress,
    ):
        catalog = create_catalog(client, plan)
        task = progress.add_task("customers", total=customers)
        for index in range(customers):
            create_customer(client, catalog, plan, alias_for(index))
            progress.advance(task)


def copy_seeded(source: Path, target: Path) -> None:
    """The seeded database and its event log file, as they are, under the new name."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    log_source = source.with_name(f"{source.stem}.events{source.suffix}")
    if log_source.exists():
        shutil.copyfile(log_source, target.with_name(f"{target.stem}.events{target.suffix}"))


def batch(customers: int, size: int, at_us: int, rng: random.Random) -> list[UsageEvent]:
    """`size` events, each for one of the first `customers` customers drawn at random."""
    return [
        UsageEvent(str(uuid.uuid4()), alias_for(rng.randrange(customers)), EVENT_TYPE, at_us, {"n": i})
        for i in range(size)
    ]


def read_ahead_all(evaluator: Evaluator) -> None:
    """Every customer's kept state dropped, then read ahead by idle batches (`engine.read_ahead`)."""
    with evaluator.db.read() as conn:
        customer_ids = list(conn.execute(select(tables.customers.c.id)).scalars())
    evaluator.snapshots.clear()
    evaluator.read_ahead.capacity = len(customer_ids)
    evaluator.read_ahead.note(customer_ids, ())
    while evaluator.run_once().more_work:
        pass


# The per-event parts of a batch, timed one by one with --parts: (label, owner, attribute).
_PARTS = (
    ("read the log", "meterline.engine.event_source:TableEventSource", "read"),
    ("apply (all below but absorb)", "meterline.engine.evaluator:Evaluator", "_apply"),
    ("resolve customer refs", "meterline.engine.customer_refs:ResolvedReferences", "resolve"),
    ("closed-period check", "meterline.engine.evaluator:invoices", "finalized_periods_reached"),
    ("fold", "meterline.engine.evaluator:", "fold"),
    ("usage written (usage.add)", "meterline.engine.usage_deferral:UsageDeferral", "add"),
    ("unmatched recorded", "meterline.engine.evaluator:unmatched", "record"),
    ("reservations settled", "meterline.engine.evaluator:reservations", "settle"),
    ("headrooms absorb", "meterline.engine.headroom:HeadroomBook", "absorb"),
    ("measure (derive, evaluate)", "meterline.engine.evaluator:Evaluator", "_bill"),
)


def time_parts() -> dict[str, list[float]]:
    """Wrap each of `_PARTS` to add up its thread CPU time and calls (a few µs a batch)."""
    import importlib

    spent: dict[str, list[float]] = {}
    for label, where, name in _PARTS:
        module_name, _colon, attribute = where.partition(":")
        module = importlib.import_module(module_name)
        owner = getattr(module, attribute) if attribute else module
        spent[label] = [0.0, 0]
        setattr(owner, name, _timed(getattr(owner, name), spent[label]))
    return spent


def _timed(function: Any, spent: list[float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[0] += time.thread_time() - started
            spent[1] += 1

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument(
        "--seeded",
        help="an SQLite file seeded by `python -m bench.seed` to run on (a copy of it) instead of "
        "seeding --customers here: the deployment may be far larger than the customers events go to",
    )
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument(
        "--warm-batches",
        type=int,
        default=0,
        help="batches evaluated first, outside the figures, so that the engine's page cache holds "
        "the pages a running engine's does (the usage rows its batches update)",
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no stored headroom nor alias loaded before the first batch (each read on its customer's "
        "first touch), as if the engine had just taken over; by default they are loaded first, as a "
        "running engine has them",
    )
    parser.add_argument("--batch-events", type=int, default=2000)
    parser.add_argument("--profile", choices=["tottime", "cumulative"], help="print a cProfile table")
    parser.add_argument("--callers", help="with --profile: who calls functions matching this")
    parser.add_argument("--profile-out", help="with --profile: also write the raw profile here (pstats)")
    parser.add_argument(
        "--statements",
        action="store_true",
        help="list the statements run per batch, with the thread CPU each took (µs per event)",
    )
    parser.add_argument(
        "--cached-customers",
        type=int,
        default=DEFAULT_CACHED_CUSTOMERS,
        help="customer snapshots kept between batches (default: the server's; 0: read every batch)",
    )
    parser.add_argument(
        "--read-ahead",
        action="store_true",
        help="before each timed batch (outside the figures), drop the snapshots and have idle "
        "batches read every customer's state ahead, as the engine does for customers near a "
        "threshold (`engine.read_ahead`): the timed batches then measure first measurements "
        "without their state reads (compare with --cached-customers 0 without it)",
    )
    parser.add_argument(
        "--headroom-customers",
        type=int,
        default=headroom.DEFAULT_CUSTOMERS,
        help="customers whose headroom the engine keeps (default: the server's; 0: measure every "
        "customer a batch touches, as before headrooms)",
    )
    parser.add_argument(
        "--parts",
        action="store_true",
        help="print the thread CPU time of each per-event part of the timed batches (ms a batch)",
    )
    args = parser.parse_args()
    parts = time_parts() if args.parts else None
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/cost.db"
        if args.seeded:
            copy_seeded(Path(args.seeded), Path(tmp) / "cost.db")
        else:
            seed(
                url,
                args.customers,
                (args.warm_batches + args.batches) * args.batch_events // args.customers + 10,
            )
        db = Database(url, durable_commits=False)  # as the engine's processes open it
        evaluator = Evaluator(
            db,
            batch_events=args.batch_events,
            poll_interval_s=1,
            cached_customers=args.cached_customers,
            headroom_customers=args.headroom_customers,
        )
        if args.cold:
            evaluator.headrooms.warm_slice = evaluator.references.warm_slice = 0
        evaluator.drain()  # the alerts' first measurements, outside the figures
        while evaluator.headrooms.warming or evaluator.references.warming:  # loaded, as at a take-over
            evaluator.run_once()
        at = now_us() - 60_000_000
        for _ in range(args.warm_batches):
            with db.log_write() as conn:
                event_log.append(conn, batch(args.customers, args.batch_events, at, rng), now_us())
            evaluator.run_once()
        # The warm batches' journaled usage merged outside the figures: the timed batches' own is
        # merged inside them, below (`engine.usage_deferral`).
        evaluator.merge_usage()
        merges_before = evaluator.usage.merges
        tune_for_long_running()  # as the engine's processes run
        absorbed_before = evaluator.headrooms.absorbed
        statements = 0
        for part in (parts or {}).values():  # the timed batches only
            part[0], part[1] = 0.0, 0

        seen: Counter[str] = Counter()
        spent: defaultdict[str, float] = defaultdict(float)  # thread CPU seconds per statement text
        began: list[float] = []

        def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            nonlocal statements
            statements += 1
            seen[" ".join(sql.split())[:110]] += 1
            if args.statements:
                began.append(time.thread_time())

        def took(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            if began:
                spent[" ".join(sql.split())[:110]] += time.thread_time() - began.pop()

        event.listen(db.engine, "before_cursor_execute", count)
        if args.statements:
            event.listen(db.engine, "after_cursor_execute", took)
        loaded_before = evaluator.snapshots.hits + evaluator.snapshots.misses
        cpu = 0.0
        wall = 0.0  # with I/O: a large database's pages come from the disk or the OS's cache
        # Thread CPU time, as the figures: wall time would count what the other processes take.
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        for _ in range(args.batches):
            if args.read_ahead:  # its idle batches' statements are not the timed batches'
                event.remove(db.engine, "before_cursor_execute", count)
                read_ahead_all(evaluator)
                event.listen(db.engine, "before_cursor_execute", count)
            with db.log_write() as conn:
                event_log.append(conn, batch(args.customers, args.batch_events, at, rng), now_us())
            started, started_wall = time.thread_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            evaluator.run_once()
            if profiler is not None:
                profiler.disable()
            cpu += time.thread_time() - started
            wall += time.perf_counter() - started_wall
        # What the batches left in the usage journal, merged into the usage tables: a cost of these
        # batches, paid later (at the journal's size or age limit) but counted here.
        started, started_wall = time.thread_time(), time.perf_counter()
        evaluator.merge_usage()
        merge_cpu = time.thread_time() - started
        cpu += merge_cpu
        wall += time.perf_counter() - started_wall
        merges = evaluator.usage.merges - merges_before
        # Customers the timed batches measured (each loads its state once: kept or read).
        measured = evaluator.snapshots.hits + evaluator.snapshots.misses - loaded_before
        db.dispose()
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr).sort_stats(args.profile)
        stats.print_stats(35)
        if args.profile_out:
            stats.dump_stats(args.profile_out)
        if args.callers:
            stats.print_callers(args.callers)
    events = args.batches * args.batch_events
    if parts is not None:
        console.print("ms CPU a batch  calls  part")
        for label, (seconds, calls) in parts.items():
            console.print(f"{seconds / args.batches * 1000:12.3f}  {int(calls):5d}  {label}")
    if args.statements:
        console.print("per batch  µs CPU/event  statement (the commit itself is not a statement)")
        for sql, n in seen.most_common(40):
            console.print(f"{n / args.batches:8.1f}  {spent[sql] / events * 1e6:10.2f}  {sql}")
    print(
        json.dumps(
            {
                "customers": args.customers,
                "batch_events": args.batch_events,
                "cpu_us_per_event": round(cpu / events * 1e6, 2),
                # of which the merges of the usage journal (the last one after the batches)
                "merge_cpu_us_per_event": round(merge_cpu / events * 1e6, 2),
                "journal_merges": merges,
                "evaluated_events_per_cpu_s": round(events / cpu),
                "customers_measured": measured,
                "cpu_us_per_customer_measured": round(cpu / max(1, measured) * 1e6, 1),
                "wall_us_per_event": round(wall / events * 1e6, 2),
                "statements_per_batch": round(statements / args.batches, 1),
                "snapshots_kept_ratio": round(
                    evaluator.snapshots.hits / max(1, evaluator.snapshots.hits + evaluator.snapshots.misses),
                    2,
                ),
                "statements_per_customer_batch": round(
                    statements / args.batches / min(args.customers, args.batch_events), 2
                ),
                # customer-batches that needed no measurement, per event
                "absorbed_per_event": round((evaluator.headrooms.absorbed - absorbed_before) / events, 3),
                "headrooms_kept": len(evaluator.headrooms),
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
