"""What a customer's first measurement costs, part by part: its state read, its drafts derived,
its alerts measured. Thread CPU per customer, the least of `--repeats` passes over every customer.

A burst of threshold crossings is mostly first measurements (each crossing customer's state is
read, its drafts derived, its alerts measured, in the batch that reads its event), so their CPU
is what the burst's engine batches take. `evaluator_cost.py --cached-customers 0` times whole
batches; this times the three parts of a measurement alone, in a transaction rolled back after
each pass (nothing is written), so the figure moves only with the code.

The customers are the bench's (a contract, a prepaid commit, 3 alerts), created on a fresh SQLite
file with the real app in-process, with some usage each (`--events-per-customer`) evaluated once.
`--seeded DIR` keeps that database in DIR (made on the first run, reused by the next), so that two
builds measure the same rows:

    python bench/first_measurement.py [--customers 300] [--repeats 15] [--seeded DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.evaluator_cost import batch, copy_seeded, seed
from meterline.domain.timeutil import now_us
from meterline.engine import alert_evaluation, billing
from meterline.engine.customer_state import load_states
from meterline.engine.evaluator import Evaluator
from meterline.logging import configure_logging
from meterline.store import event_log
from meterline.store.db import Database

PARTS = ("read", "derive", "alerts")


def seeded(path: Path, customers: int, events_per_customer: int) -> None:
    """The bench's customers, their usage evaluated once (alert states and drafts as a running
    engine leaves them)."""
    url = f"sqlite:///{path}"
    seed(url, customers, events_per_customer + 10)
    db = Database(url, durable_commits=False)
    evaluator = Evaluator(db, batch_events=2000, poll_interval_s=1, cached_customers=0, headroom_customers=0)
    evaluator.drain()
    with db.log_write() as conn:
        events = batch(customers, customers * events_per_customer, now_us() - 60_000_000, random.Random(3))
        event_log.append(conn, events, now_us())
    evaluator.drain()
    db.dispose()


def one_pass(db: Database, customer_ids: list[str]) -> dict[str, float]:
    """Every customer measured once from scratch, in a transaction rolled back: thread CPU seconds per part."""
    with db.engine.connect() as conn:
        transaction = conn.begin()
        now = now_us()
        window = billing.billing_window(now, billing.DEFAULT_OPEN_HORIZON_US)
        started = time.thread_time()
        catalog = billing.PricingCatalog(conn, customer_ids)
        states = load_states(conn, customer_ids)
        read = time.thread_time()
        for state in states.values():
            billing.derive_drafts(state, window, catalog)
        derived = time.thread_time()
        writes = alert_evaluation.AlertWrites()
        for customer_id in customer_ids:
            alert_evaluation.evaluate_customer(
                conn, customer_id, now, "usage", state=states[customer_id], writes=writes, catalog=catalog
            )
        measured = time.thread_time()
        transaction.rollback()
    return {"read": read - started, "derive": derived - read, "alerts": measured - derived}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--events-per-customer", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seeded", type=Path, help="a directory keeping the seeded database between runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = (args.seeded or Path(tmp)) / "first.db"
        if not source.exists():
            source.parent.mkdir(parents=True, exist_ok=True)
            seeded(source, args.customers, args.events_per_customer)
        configure_logging("warning")
        copy_seeded(source, Path(tmp) / "measured.db")
        db = Database(f"sqlite:///{Path(tmp) / 'measured.db'}", durable_commits=False)
        with db.read() as conn:
            customer_ids = [row[0] for row in conn.execute(text("SELECT id FROM customers ORDER BY id"))]
        passes = [one_pass(db, customer_ids) for _ in range(args.repeats)]
        db.dispose()
    result: dict[str, object] = {"customers": len(customer_ids), "repeats": args.repeats}
    for part in PARTS:
        result[f"{part}_cpu_us_per_customer"] = round(
            min(p[part] for p in passes) / len(customer_ids) * 1e6, 1
        )
    result["cpu_us_per_customer"] = round(min(sum(p.values()) for p in passes) / len(customer_ids) * 1e6, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
