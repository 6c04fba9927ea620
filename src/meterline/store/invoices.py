"""Invoices (USAGE, of a contract's billing periods; SCHEDULED, of one schedule item each; TRUEUP,
of one postpaid commit's true-up) and the deductions they make from commit segments (a usage
invoice's drawdown; a true-up's, once finalized, the part of the commit it billed).

What is stored: finalized invoices, whole (their line items as rendered at finalization, their
deductions), and one row per open draft, which only marks that the period is open so that its
finalization can be found (`due_for_finalization`). A draft's amounts and deductions are never
stored: they follow from the usage aggregates and the contracts, and are derived wherever they
are read (the engine keeps them in memory, the API derives them on read: `engine.billing`).
A draft's row therefore holds zeros and no line items. A voided invoice stays as it was, with
status VOID and no deductions; one regenerated from it is a finalized invoice of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import Connection, delete, func, or_, select, update

from meterline.domain import closed_periods
from meterline.domain.commit_edits import Drawn
from meterline.domain.invoicing import InvoiceComputation
from meterline.store.sql import among, grouped_by_customer, upsert
from meterline.store.tables import commit_deductions, customers, invoices

DRAFT = "DRAFT"
FINALIZED = "FINALIZED"
VOID = "VOID"
CLOSED = frozenset({FINALIZED, VOID})  # statuses of stored invoices: their periods are never derived again
USAGE = "USAGE"
SCHEDULED = "SCHEDULED"
TRUEUP = "TRUEUP"  # Metronome's type of the invoice of a postpaid commit's true-up
DATED = frozenset({SCHEDULED, TRUEUP})  # invoices of one date (start and end alike), not of a period
_INVOICE_NAMESPACE = uuid.UUID("6c1d9a4e-3f57-4bde-9d0a-2f61b3a0c7e5")
_encode = msgspec.json.Encoder(decimal_format="number").encode
_decode = msgspec.json.Decoder(float_hook=Decimal).decode

# (commit id, segment id, invoice id, amount, at): one deduction from a commit segment.
LedgerDeduction = tuple[str, str, str, Decimal, int]


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    id: str
    customer_id: str
    contract_id: str
    credit_type_id: str
    type: str
    status: str
    start_us: int
    end_us: int
    subtotal: Decimal
    total: Decimal
    spend_by_credit_type: dict[str, Decimal]
    line_items: list[dict[str, Any]]
    updated_at_us: int
    finalized_at_us: int | None
    # A derived draft's computation (its line items are rendered only when shown or finalized);
    # None for a stored, finalized invoice, whose `line_items` are as rendered then.
    computation: InvoiceComputation | None = None
    regenerated_from_invoice_id: str | None = None  # the voided invoice this one replaces
    schedule_item_ids: tuple[str, ...] = ()  # the schedule items it bills (`domain.scheduled_items`)


def computed_draft(
    invoice_id: str,
    customer_id: str,
    contract_id: str,
    credit_type_id: str,
    invoice_type: str,
    start_us: int,
    end_us: int,
    computation: InvoiceComputation,
    now_us: int,
) -> InvoiceRecord:
    """A draft as the engine derives it: its totals and spend are its computation's, its line
    items rendered only when shown or finalized."""
    return InvoiceRecord(
        id=invoice_id,
        customer_id=customer_id,
        contract_id=contract_id,
        credit_type_id=credit_type_id,
        type=invoice_type,
        status=DRAFT,
        start_us=start_us,
        end_us=end_us,
        subtotal=computation.subtotal,
        total=computation.total,
        spend_by_credit_type=computation.spend_by_credit_type,
        line_items=[],
        updated_at_us=now_us,
        finalized_at_us=None,
        computation=computation,
        schedule_item_ids=tuple(item.item_id for item in computation.scheduled),
    )


@dataclass(frozen=True, slots=True)
class Deduction:
    segment_id: str
    commit_id: str
    amount: Decimal


@lru_cache(maxsize=65_536)
def invoice_id(contract_id: str, period_start_us: int) -> str:
    """Stable per (contract, period), so recomputing a draft rewrites the same invoice.

    Cached: every batch recomputes the same customers' open periods."""
    return str(uuid.uuid5(_INVOICE_NAMESPACE, f"usage:{contract_id}:{period_start_us}"))


def scheduled_invoice_id(item_id: str) -> str:
    """The SCHEDULED invoice of one schedule item: stable, so the item is billed once."""
    return str(uuid.uuid5(_INVOICE_NAMESPACE, f"scheduled:{item_id}"))


def mark_drafts(conn: Connection, records: Sequence[InvoiceRecord]) -> None:
    """Record that these drafts' periods are open (their rows hold no amounts: see above)."""
    if records:
        upsert(conn, invoices, [_marker_row(record) for record in records], ["id"])


def _marker_row(record: InvoiceRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "customer_id": record.customer_id,
        "contract_id": record.contract_id,
        "credit_type_id": record.credit_type_id,
        "type": record.type,
        "status": DRAFT,
        "start_us": record.start_us,
        "end_us": record.end_us,
        "subtotal": Decimal(0),
        "total": Decimal(0),
        "spend_by_credit_type": "{}",
        "line_items": "[]",
        "updated_at_us": record.updated_at_us,
        "finalized_at_us": None,
        "regenerated_from_invoice_id": record.regenerated_from_invoice_id,
        "schedule_item_ids": list(record.schedule_item_ids),
    }


def finalize(conn: Connection, finalized: Sequence[tuple[InvoiceRecord, Sequence[Deduction]]]) -> None:
    """Store these invoices as finalized (rendered, with `status` FINALIZED) with their deductions."""
    if not finalized:
        return
    upsert(conn, invoices, [_finalized_row(record) for record, _d in finalized], ["id"])
    rows = [
        {
            "invoice_id": record.id,
            "segment_id": d.segment_id,
            "commit_id": d.commit_id,
            "amount": d.amount,
            "at_us": record.end_us,
        }
        for record, deductions in finalized
        for d in deductions
    ]
    if rows:
        conn.execute(commit_deductions.insert(), rows)


def _finalized_row(record: InvoiceRecord) -> dict[str, Any]:
    assert record.status == FINALIZED and record.finalized_at_us is not None
    return {
        **_marker_row(record),
        "status": FINALIZED,
        "subtotal": record.subtotal,
        "total": record.total,
        "spend_by_credit_type": _encode(record.spend_by_credit_type).decode(),
        "line_items": _encode(record.line_items).decode(),
        "finalized_at_us": record.finalized_at_us,
    }


def for_customers(conn: Connection, customer_ids: Sequence[str]) -> dict[str, list[InvoiceRecord]]:
    """`for_customer` of many customers in one statement per chunk (the evaluator's batch)."""

    def load(chunk: Sequence[str]) -> Iterator[tuple[str, InvoiceRecord]]:
        query = (
            select(invoices)
            .where(among(conn, invoices.c.customer_id, chunk))
            .order_by(invoices.c.start_us, invoices.c.id)
        )
        return ((row["customer_id"], _record(row)) for row in conn.execute(query).mappings())

    return grouped_by_customer(customer_ids, load)


def deductions_for_customers(
    conn: Connection, customer_ids: Sequence[str]
) -> dict[str, list[LedgerDeduction]]:
    """The finalized invoices' deductions of these customers, by time, one statement per chunk."""
    return grouped_by_customer(
        customer_ids,
        lambda chunk: (
            (r[0], (r[1], r[2], r[3], r[4], r[5]))
            for r in conn.execute(_deductions(among(conn, invoices.c.customer_id, chunk)))
        ),
    )


def get_invoice(conn: Connection, invoice_id: str) -> InvoiceRecord | None:
    """The stored invoice with this id (a draft's row holds no amounts: see above)."""
    row = conn.execute(select(invoices).where(invoices.c.id == invoice_id)).mappings().first()
    return None if row is None else _record(row)


def finalized_of_contract(conn: Connection, contract_id: str) -> list[str]:
    query = select(invoices.c.id).where(invoices.c.contract_id == contract_id, invoices.c.status == FINALIZED)
    return [str(i) for i in conn.execute(query.order_by(invoices.c.start_us)).scalars()]


def regenerated_as(conn: Connection, invoice_id: str) -> str | None:
    """The id of the invoice regenerated from this voided one, if any."""
    query = select(invoices.c.id).where(invoices.c.regenerated_from_invoice_id == invoice_id)
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def void(conn: Connection, invoice_id: str, at_us: int) -> None:
    """Mark a finalized invoice VOID and give back what it drew from commits and credits (its
    deductions go: the segments hold that amount again). Its line items stay, for the record."""
    conn.execute(
        update(invoices)
        .where(invoices.c.id == invoice_id, invoices.c.status == FINALIZED)
        .values(status=VOID, updated_at_us=at_us)
    )
    conn.execute(delete(commit_deductions).where(commit_deductions.c.invoice_id == invoice_id))


def drawn_until(conn: Connection, commit_id: str) -> int | None:
    """The end of the last finalized invoice that drew from the commit (None: none did)."""
    query = (
        select(func.max(commit_deductions.c.at_us))
        .join(invoices, invoices.c.id == commit_deductions.c.invoice_id)
        .where(commit_deductions.c.commit_id == commit_id, invoices.c.status == FINALIZED)
    )
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def drawn_by_segment(conn: Connection, commit_id: str) -> dict[str, Drawn]:
    """What finalized invoices drew from each access segment of the commit, and until when
    (summed here: SQLite keeps exact decimals as text, which its SUM would make floats)."""
    query = (
        select(commit_deductions.c.segment_id, commit_deductions.c.amount, commit_deductions.c.at_us)
        .join(invoices, invoices.c.id == commit_deductions.c.invoice_id)
        .where(commit_deductions.c.commit_id == commit_id, invoices.c.status == FINALIZED)
    )
    found: dict[str, Drawn] = {}
    for row in conn.execute(query):
        held = found.get(row.segment_id, Drawn(Decimal(0), row.at_us))
        found[row.segment_id] = Drawn(held.amount + row.amount, max(held.until_us, row.at_us))
    return found


def finalized_until(conn: Connection, contract_id: str) -> int | None:
    """The end of the contract's last finalized invoice (None: none is finalized)."""
    query = select(func.max(invoices.c.end_us)).where(
        invoices.c.contract_id == contract_id, invoices.c.status == FINALIZED
    )
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def due_for_finalization(
    conn: Connection,
    now_us: int,
    grace_us: int,
    limit: int = 500,
    partitions: frozenset[int] | None = None,
) -> list[tuple[str, str]]:
    """(customer id, invoice id) of drafts due, of customers of these home partitions (None:
    all): a usage invoice once its period plus the grace period is over, a SCHEDULED one on its
    date (its amount waits for no usage), a TRUEUP one once its date plus the grace period is
    over (its amount is what usage left of the commit: it waits for late usage as usage does)."""
    query = (
        select(invoices.c.customer_id, invoices.c.id)
        .where(
            invoices.c.status == DRAFT,
            invoices.c.end_us <= now_us,
            or_(invoices.c.type == SCHEDULED, invoices.c.end_us <= now_us - grace_us),
        )
        .order_by(invoices.c.end_us)
        .limit(limit)
    )
    if partitions is not None:
        query = query.join(customers, customers.c.id == invoices.c.customer_id).where(
            customers.c.partition.in_(sorted(partitions))
        )
    return [(r[0], r[1]) for r in conn.execute(query)]


def schedule_items_billed(
    conn: Connection, customer_id: str, statuses: frozenset[str] = CLOSED
) -> dict[str, str]:
    """Schedule item id -> the invoice of these statuses (finalized or voided) that billed it, of
    one customer."""
    query = select(invoices.c.id, invoices.c.schedule_item_ids).where(
        invoices.c.customer_id == customer_id,
        invoices.c.status.in_(sorted(statuses)),
        invoices.c.schedule_item_ids.is_not(None),
    )
    return {item_id: row.id for row in conn.execute(query) for item_id in row.schedule_item_ids or ()}


def _deductions(*conditions: Any) -> Any:
    """(customer id, commit id, segment id, invoice id, amount, at) by time."""
    return (
        select(
            invoices.c.customer_id,
            commit_deductions.c.commit_id,
            commit_deductions.c.segment_id,
            commit_deductions.c.invoice_id,
            commit_deductions.c.amount,
            commit_deductions.c.at_us,
        )
        .join(invoices, invoices.c.id == commit_deductions.c.invoice_id)
        # Only finalized invoices' deductions are stored (a database from before drafts were
        # derived may still hold drafts' own: they are not counted).
        .where(invoices.c.status == FINALIZED, *conditions)
        .order_by(commit_deductions.c.at_us)
    )


def remove_drafts(conn: Connection, stale_ids: Sequence[str]) -> None:
    """Drop these drafts and their deductions."""
    if stale_ids:
        ids = list(stale_ids)
        conn.execute(delete(commit_deductions).where(commit_deductions.c.invoice_id.in_(ids)))
        conn.execute(delete(invoices).where(invoices.c.id.in_(ids), invoices.c.status == DRAFT))


def finalized_periods_reached(
    conn: Connection, events: Iterable[tuple[str, int]], now_us: int, grace_us: int
) -> dict[str, list[tuple[int, int]]]:
    """The finalized billing periods these (customer id, timestamp) events may fall in, by
    customer (`domain.closed_periods`); nothing is read when no event is old enough for one."""
    late = closed_periods.oldest_late_event(events, now_us, grace_us)
    if not late:
        return {}
    return closed_ranges(conn, sorted(late), min(late.values()))


def closed_ranges(
    conn: Connection, customer_ids: Sequence[str], since_us: int
) -> dict[str, list[tuple[int, int]]]:
    """Periods of finalized invoices ending after `since_us`: usage there can no longer change."""
    rows = conn.execute(
        select(invoices.c.customer_id, invoices.c.start_us, invoices.c.end_us).where(
            invoices.c.customer_id.in_(list(customer_ids)),
            invoices.c.status == FINALIZED,
            invoices.c.end_us > since_us,
        )
    )
    ranges: dict[str, list[tuple[int, int]]] = {}
    for customer_id, start, end in rows:
        ranges.setdefault(customer_id, []).append((start, end))
    return ranges


def _record(row: Any) -> InvoiceRecord:
    return InvoiceRecord(
        id=row["id"],
        customer_id=row["customer_id"],
        contract_id=row["contract_id"],
        credit_type_id=row["credit_type_id"],
        type=row["type"],
        status=row["status"],
        start_us=row["start_us"],
        end_us=row["end_us"],
        subtotal=row["subtotal"],
        total=row["total"],
        spend_by_credit_type={k: Decimal(v) for k, v in _decode(row["spend_by_credit_type"]).items()},
        line_items=_decode(row["line_items"]),
        updated_at_us=row["updated_at_us"],
        finalized_at_us=row["finalized_at_us"],
        regenerated_from_invoice_id=row["regenerated_from_invoice_id"],
        schedule_item_ids=tuple(row["schedule_item_ids"] or ()),
    )
