"""Seed N customers fast: one template over the HTTP API, N-1 clones of its rows in the database.

1. Start `meterline serve` on the database and create, over the API, the pricing catalog and ONE
   template customer (`bench-customer-0`): ingest alias, contract on the TIERED rate card with a
   prepaid commit, three alerts (see `bench.plan`).
2. Wait until the evaluator has settled: every alert's `customer_status` is no longer
   `evaluating` and the customer's invoices (its draft) no longer change.
3. Stop the server and clone the template's rows N-1 times directly in the database (see
   `bench.clone` for which tables are cloned and why), customers `bench-customer-1` and up.
4. Restart the server and check, through the API, that a sample of clones is there and right:
   the customer by alias and by id, its three alerts with the template's thresholds and status,
   its contract, its draft invoice and its commit balance.

    python -m bench.seed --customers 1000000 [--database-url URL] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine, create_engine, event
from tests.support.server import start_server

from bench.catalog import (
    Catalog,
    create_catalog,
    create_customer,
    customer_alerts,
    customer_by_alias,
)
from bench.clone import Cloner, Template, chunks, read_template
from bench.plan import Plan, alias_for
from meterline.store.db import normalize_url

SETTLE_TIMEOUT_S = 60.0
DEFAULT_CHUNK = 10_000
DEFAULT_COMMIT_EVERY = 250_000
SQLITE_CACHE_KIB = 4 * 1024 * 1024


@dataclass
class SeedResult:
    database_url: str
    token: str
    customers: int
    plan: Plan
    catalog: Catalog
    template_customer_id: str
    rows_per_customer: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    verified: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def seed(
    database_url: str,
    workdir: Path,
    customers: int,
    plan: Plan,
    *,
    console: Console,
    sample: int = 20,
    chunk: int = DEFAULT_CHUNK,
    server_env: dict[str, str] | None = None,
) -> SeedResult:
    """Seed `customers` customers into a fresh database; the server is stopped on return."""
    env = server_env or {}
    started = time.perf_counter()
    server = start_server(database_url, workdir, token=None, port=None, **env)
    try:
        client = httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60)
        catalog = create_catalog(client, plan)
        template_id = create_customer(client, catalog, plan, alias_for(0))
        _settle(client, template_id)
    finally:
        server.stop()
    result = SeedResult(database_url, server.token, customers, plan, catalog, template_id, {})
    result.seconds["template"] = time.perf_counter() - started
    started = time.perf_counter()
    watch = sorted(set(random.sample(range(1, customers), min(sample, customers - 1))) | {customers - 1})
    cloned = clone_template(
        database_url,
        template_id,
        customers,
        console=console,
        chunk=chunk,
        watch=watch if customers > 1 else (),
    )
    result.rows_per_customer = cloned.template.rows_per_customer()
    result.warnings = cloned.template.warnings
    result.seconds["clone"] = time.perf_counter() - started
    started = time.perf_counter()
    server = start_server(database_url, workdir, token=server.token, port=None, **env)
    try:
        client = httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60)
        with console.status(f"checking {len(cloned.watched)} clones through the API"):
            result.verified = verify_clones(client, template_id, cloned.watched, plan)
    finally:
        server.stop()
    result.seconds["verify"] = time.perf_counter() - started
    return result


def _settle(client: httpx.Client, customer_id: str) -> None:
    """Until every alert is measured and the customer's invoices no longer change."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    previous = None
    while time.monotonic() < deadline:
        alerts = customer_alerts(client, customer_id)
        invoices = client.get(f"/v1/customers/{customer_id}/invoices").json()["data"]
        if all(a["customer_status"] != "evaluating" for a in alerts):
            if invoices == previous:
                return
            previous = invoices
        time.sleep(0.1)
    raise RuntimeError(f"the template customer {customer_id} did not settle in {SETTLE_TIMEOUT_S:.0f}s")


def _clone_engine(database_url: str) -> Engine:
    engine = create_engine(normalize_url(database_url))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _fast(dbapi_conn: Any, _record: Any) -> None:
            # No server runs and a failed seeding is simply redone: no journal, no sync, and a
            # cache large enough that each page is written once per commit. (The server turns
            # WAL back on when it connects.)
            cursor = dbapi_conn.cursor()
            for pragma in (
                "journal_mode=OFF",
                "synchronous=OFF",
                f"cache_size=-{SQLITE_CACHE_KIB}",
                "temp_store=MEMORY",
                "busy_timeout=60000",
            ):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    return engine


def extend(seeded: SeedResult, database_url: str, customers: int, *, console: Console) -> SeedResult:
    """`database_url`, a copy of `seeded`'s database no server uses, with clones added up to
    `customers` in all."""
    cloned = clone_template(
        database_url, seeded.template_customer_id, customers, console=console, first=seeded.customers
    )
    if cloned.template.rows_per_customer() != seeded.rows_per_customer:
        raise RuntimeError(
            f"the template read from the copy differs from the seeded one: "
            f"{cloned.template.rows_per_customer()} vs {seeded.rows_per_customer}"
        )
    return replace(seeded, database_url=database_url, customers=customers, verified=[])


@dataclass
class Cloned:
    template: Template
    watched: dict[int, str]  # clone index -> its customer id


def clone_template(
    database_url: str,
    template_id: str,
    customers: int,
    *,
    console: Console,
    chunk: int = DEFAULT_CHUNK,
    commit_every: int = DEFAULT_COMMIT_EVERY,
    watch: Sequence[int] = (),
    first: int = 1,
) -> Cloned:
    """Clone the template customer into customers first..customers-1 (no server may be running);
    customers 1..first-1, when there, are clones already."""
    engine = _clone_engine(database_url)
    try:
        with engine.connect() as conn:
            template = read_template(conn, template_id, alias_for(0))
            conn.commit()
            for warning in template.warnings:
                console.print(f"[yellow]warning:[/] {warning}")
            rows = ", ".join(f"{name} {count}" for name, count in template.rows_per_customer().items())
            console.print(f"cloning per customer: {rows}")
            cloner = Cloner(template, alias_for, watch=watch)
            cloner.prepare(conn)
            conn.commit()
            uncommitted = 0
            with _progress(console) as progress:
                task = progress.add_task("cloning customers", total=max(customers - first, 0))
                for start, count in chunks(first, customers - 1, chunk):
                    cloner.clone(conn, start, count)
                    uncommitted += count
                    if uncommitted >= commit_every:
                        conn.commit()
                        uncommitted = 0
                    progress.advance(task, count)
                conn.commit()
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
    finally:
        engine.dispose()
    return Cloned(template, cloner.watched)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _alert_summary(alerts: list[dict[str, Any]], alias: str) -> list[tuple[str, str, Any, Any]]:
    return sorted(
        (
            a["alert"]["name"].replace(alias, "<alias>"),
            a["alert"]["type"],
            a["alert"]["threshold"],
            a["customer_status"],
        )
        for a in alerts
    )


def verify_clones(
    client: httpx.Client, template_id: str, clones: dict[int, str], plan: Plan
) -> list[dict[str, Any]]:
    """Read the clones (index -> customer id) through the API and compare each with the template:
    name and ingest alias, three alerts with the template's types, thresholds and status, one
    contract, the draft invoice and the commit balance, none of them sharing an id with the
    template's. The last clone is also looked up by its alias. Raises AssertionError if wrong."""
    template_alerts = customer_alerts(client, template_id)
    if len(template_alerts) != len(plan.alerts):
        raise AssertionError(f"template: {len(template_alerts)} alerts, expected {len(plan.alerts)}")
    template_view = _customer_view(client, template_id)
    verified = []
    for index, customer_id in sorted(clones.items()):
        alias = alias_for(index)
        customer = client.get(f"/v1/customers/{customer_id}")
        data = customer.json().get("data", {}) if customer.status_code == 200 else {}
        if data.get("name") != alias or data.get("ingest_aliases") != [alias]:
            raise AssertionError(f"{alias}: GET /v1/customers/{customer_id} answered {customer.text}")
        alerts = customer_alerts(client, customer_id)
        if _alert_summary(alerts, alias) != _alert_summary(template_alerts, alias_for(0)):
            raise AssertionError(f"{alias}: alerts differ from the template's: {alerts}")
        if {a["alert"]["id"] for a in alerts} & {a["alert"]["id"] for a in template_alerts}:
            raise AssertionError(f"{alias}: shares alert ids with the template")
        view = _customer_view(client, customer_id)
        same = {k: v for k, v in view.items() if k != "ids"} == {
            k: v for k, v in template_view.items() if k != "ids"
        }
        if not same or set(view["ids"]) & set(template_view["ids"]):
            raise AssertionError(f"{alias}: contract, invoice or balance differs: {view} vs {template_view}")
        verified.append({"alias": alias, "customer_id": customer_id, "alerts": _alert_summary(alerts, alias)})
    if clones:
        last = max(clones)
        found = customer_by_alias(client, alias_for(last))
        if found is None or found["id"] != clones[last]:
            raise AssertionError(f"{alias_for(last)}: not found by its ingest alias: {found}")
    return verified


def _customer_view(client: httpx.Client, customer_id: str) -> dict[str, Any]:
    """What must match between the template and a clone (`ids` must not)."""
    contracts = client.post("/v1/contracts/list", json={"customer_id": customer_id}).json()["data"]
    invoices = client.get(f"/v1/customers/{customer_id}/invoices").json()["data"]
    balances = client.post(
        "/v1/contracts/customerBalances/list",
        json={"customer_id": customer_id, "include_contract_balances": True, "include_balance": True},
    ).json()["data"]
    return {
        "contracts": len(contracts),
        "invoices": sorted((i["status"], i["total"], i["start_timestamp"]) for i in invoices),
        "balances": sorted(b.get("balance") for b in balances),
        "ids": [c["id"] for c in contracts] + [i["id"] for i in invoices] + [b["id"] for b in balances],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.seed", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1000, help="customers in all (default 1000)")
    parser.add_argument(
        "--database-url",
        help="an EMPTY database to seed (default: a new SQLite file seed.db in the work directory)",
    )
    parser.add_argument("--workdir", type=Path, help="server logs and the SQLite file (default: a temp dir)")
    parser.add_argument(
        "--events-per-customer",
        type=int,
        default=40,
        help="events each customer is planned to receive; sets the tiers and thresholds (default 40)",
    )
    parser.add_argument("--sample", type=int, default=20, help="clones checked through the API (default 20)")
    parser.add_argument(
        "--chunk", type=int, default=DEFAULT_CHUNK, help=f"clones per INSERT (default {DEFAULT_CHUNK})"
    )
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="meterline-seed-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        url = args.database_url or f"sqlite:///{workdir / 'seed.db'}"
        started = time.perf_counter()
        result = seed(
            url,
            workdir,
            args.customers,
            Plan(args.events_per_customer),
            console=console,
            sample=args.sample,
            chunk=args.chunk,
        )
        total = time.perf_counter() - started
        console.print(
            f"seeded {result.customers:,} customers in {total:.1f}s "
            f"(template {result.seconds['template']:.1f}s, clone {result.seconds['clone']:.1f}s, "
            f"verify {result.seconds['verify']:.1f}s); {len(result.verified)} clones checked through the API"
        )
        if args.workdir is None and args.database_url is None:
            console.print(
                "(the SQLite file was in a temporary directory and is now removed; pass --workdir to keep it)"
            )


if __name__ == "__main__":
    main()
