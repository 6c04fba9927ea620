"""A property of billing from schedules and usage together, whatever the sequence: over any
scheduled charges and commit purchases (consolidated onto usage invoices or not), any usage, and
the engine run at any instants with restarts between them,

- every invoice's lines add up to its subtotal and its total (a postpaid commit's drawdown
  shown, not counted);
- every schedule item is billed by exactly one finalized invoice: none twice, none missed (a
  postpaid commit's true-up by none when usage reached the commit);
- every unit of usage is billed once, at its price;
- a postpaid commit's true-up bills exactly what usage in its access schedule left of it.

In-process on SQLite (a fresh database per example, a copy of the migrated template), the
evaluator on an injected clock.
"""

from __future__ import annotations

import tempfile
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from meterline.domain.events import UsageEvent
from meterline.domain.timeutil import US_PER_DAY, US_PER_HOUR, from_us, month_bounds, now_us
from meterline.store import event_log
from meterline.store.tables import invoices as invoice_rows
from tests.sdk.alert_helpers import Usage, customer, fixed_product, rate_card, usage_product
from tests.sdk.billing_helpers import Json, exact
from tests.support.databases import fresh_database
from tests.support.inprocess import InProcess, in_process

D = Decimal
PRICE = 7  # cents per unit of usage
SPAN_DAYS = 100  # dates fall within this many days from the current month's start
GRACE_US = 24 * US_PER_HOUR

hours = st.integers(min_value=0, max_value=SPAN_DAYS * 24 - 1)
# Two decimal places: sent as JSON numbers, whose shortest form is the same exact decimal.
cents = st.decimals(min_value=D("0.01"), max_value=D(5000), places=2)
item = st.tuples(hours, cents, st.booleans())  # (hour offset, amount, a commit purchase?)
at_period_end = st.tuples(st.integers(min_value=1, max_value=3), cents)  # (months ahead, amount)
use = st.tuples(hours, st.integers(min_value=1, max_value=50))  # (hour offset, quantity)
run = st.tuples(hours, st.booleans())  # (hour offset, restart before it?)
# A postpaid commit drawn by the usage: (days its access lasts, hours after that it is trued up, amount).
committed = st.tuples(
    st.integers(min_value=1, max_value=SPAN_DAYS), st.integers(min_value=0, max_value=72), cents
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(
    items=st.lists(item, min_size=1, max_size=6),
    period_ends=st.lists(at_period_end, max_size=3),
    uses=st.lists(use, max_size=8),
    runs=st.lists(run, max_size=6),
    consolidate=st.booleans(),
    postpaid=st.none() | committed,
)
def test_every_item_and_unit_is_billed_once_and_every_invoice_adds_up(
    items: list[tuple[int, Decimal, bool]],
    period_ends: list[tuple[int, Decimal]],
    uses: list[tuple[int, int]],
    runs: list[tuple[int, bool]],
    consolidate: bool,
    postpaid: tuple[int, int, Decimal] | None,
) -> None:
    # A database of the example's own (its clock goes back to this month), copied from the migrated
    # template: migrating one from nothing cost each example about a CPU-second.
    with (
        tempfile.TemporaryDirectory() as folder,
        fresh_database("sqlite", Path(folder)) as url,
        in_process(url) as app,
    ):
        start, _next = month_bounds(app.now)
        customer_id, usage = _billed(app, start, items, period_ends, consolidate, postpaid)
        for offset, quantity in uses:
            _append(app, customer_id, usage, start + offset * US_PER_HOUR, quantity)
        # A running engine wakes at least weekly; the drawn runs come between, some after a restart.
        weekly = [(day * 24, False) for day in range(0, SPAN_DAYS + 70, 7)]
        for offset, restart in sorted(runs + weekly):
            if restart:
                app.restart()
            app.run(max(app.now, start + offset * US_PER_HOUR))
        app.restart()
        app.run(start + (SPAN_DAYS + 70) * US_PER_DAY)  # every period with a date over, and its grace

        found = _invoices(app, customer_id)
        for inv in found:
            counted = [line["total"] for line in inv["line_items"] if not _postpaid_drawdown(line)]
            assert sum(counted, D(0)) == inv["total"] == inv["subtotal"]
        found = [inv for inv in found if inv["status"] == "FINALIZED"]
        trueup = D(0)
        if postpaid is not None:
            days, _after, amount = postpaid
            drawn = PRICE * sum(q for offset, q in uses if offset < days * 24)
            trueup = max(amount - drawn, D(0))
        billed = _item_bills(app, customer_id)
        assert len(billed) == len(set(billed))
        assert len(billed) == len(items) + len(period_ends) + (1 if trueup else 0)
        usage_lines = [line for inv in found for line in inv["line_items"] if line["type"] == "usage"]
        assert sum((line["total"] for line in usage_lines), D(0)) == PRICE * sum(q for _o, q in uses)
        trueups = [
            line["total"] for inv in found for line in inv["line_items"] if line["type"] == "postpaid_trueup"
        ]
        assert trueups == ([trueup] if trueup else [])
        scheduled = [
            line
            for inv in found
            for line in inv["line_items"]
            if line["type"] in ("scheduled", "commit_purchase")
        ]
        assert sum((line["total"] for line in scheduled), D(0)) == sum(a for _h, a, _c in items) + sum(
            a for _m, a in period_ends
        )


def _postpaid_drawdown(line: Json) -> bool:
    """A postpaid commit's drawdown: shown on the usage invoice, not subtracted (paid in arrears)."""
    return (
        line["type"] == "applied_commit_or_credit" and line["applied_commit_or_credit"]["type"] == "POSTPAID"
    )


def _billed(
    app: InProcess,
    start: int,
    items: list[tuple[int, Decimal, bool]],
    period_ends: list[tuple[int, Decimal]],
    consolidate: bool,
    postpaid: tuple[int, int, Decimal] | None,
) -> tuple[str, Usage]:
    """A customer on a contract from the current month, with the items as scheduled charges and
    prepaid commits' invoice schedules (and charges dated exactly at usage periods' ends), and
    the postpaid commit, if any, drawn by the usage."""
    client = app.client
    customer_id, usage, product = customer(client), usage_product(client), fixed_product(client)
    charges = [
        {"timestamp": from_us(start + offset * US_PER_HOUR), "amount": float(amount)}
        for offset, amount, purchase in items
        if not purchase
    ]
    ends = start
    for months_ahead, amount in period_ends:
        ends = start
        for _ in range(months_ahead):
            ends = month_bounds(ends)[1]
        charges.append({"timestamp": from_us(ends), "amount": float(amount)})
    commits = [
        {
            "type": "PREPAID",
            "product_id": product,
            "applicable_product_ids": [product],  # drawn down by no usage: only its purchase is billed
            "access_schedule": {
                "schedule_items": [
                    {"amount": 1, "starting_at": from_us(start), "ending_before": from_us(start + US_PER_DAY)}
                ]
            },
            "invoice_schedule": {
                "schedule_items": [
                    {"timestamp": from_us(start + offset * US_PER_HOUR), "amount": float(amount)}
                ]
            },
        }
        for offset, amount, purchase in items
        if purchase
    ]
    if postpaid is not None:
        days, after, amount = postpaid
        ends = start + days * US_PER_DAY
        commits.append(
            {
                "type": "POSTPAID",
                "product_id": product,
                "access_schedule": {
                    "schedule_items": [
                        {
                            "amount": float(amount),
                            "starting_at": from_us(start),
                            "ending_before": from_us(ends),
                        }
                    ]
                },
                "invoice_schedule": {
                    "schedule_items": [
                        {"timestamp": from_us(ends + after * US_PER_HOUR), "amount": float(amount)}
                    ]
                },
            }
        )
    fields: dict[str, Any] = {"scheduled_charges_on_usage_invoices": "ALL"} if consolidate else {}
    if charges:
        fields["scheduled_charges"] = [{"product_id": product, "schedule": {"schedule_items": charges}}]
    client.v1.contracts.create(
        customer_id=customer_id,
        rate_card_id=rate_card(client, (usage.product_id, PRICE)),
        starting_at=from_us(start),
        commits=commits,
        **fields,
    )
    return customer_id, usage


def _append(app: InProcess, customer_id: str, usage: Usage, at_us: int, quantity: int) -> None:
    """An event at a moment the clock's future may hold (ingest refuses those too far ahead)."""
    event = UsageEvent(f"tx-{uuid.uuid4()}", customer_id, usage.event_type, at_us, {"qty": quantity})
    with app.db.log_write() as conn:
        event_log.append(conn, [event], now_us())


def _invoices(app: InProcess, customer_id: str) -> list[Json]:
    raw = app.client.v1.customers.invoices.with_raw_response.list(customer_id=customer_id, limit=100)
    found: list[Json] = exact(raw)["data"]
    return found


def _item_bills(app: InProcess, customer_id: str) -> list[str]:
    with app.db.read() as conn:
        rows = conn.execute(
            select(invoice_rows.c.schedule_item_ids).where(
                invoice_rows.c.customer_id == customer_id, invoice_rows.c.status == "FINALIZED"
            )
        )
        return [item_id for (ids,) in rows for item_id in ids or ()]
