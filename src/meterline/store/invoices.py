"""Usage invoices (the live billing snapshot) and the deductions they make from commit segments."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec
from sqlalchemy import Connection, delete, select, update

from meterline.domain import closed_periods
from meterline.domain.errors import NotFound
from meterline.store.sql import IN_CHUNK, among, chunks, grouped_by_customer, upsert
from meterline.store.tables import commit_deductions, customers, invoices

DRAFT = "DRAFT"
FINALIZED = "FINALIZED"
USAGE = "USAGE"
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


def save_drafts(conn: Connection, drafts: Sequence[tuple[InvoiceRecord, Sequence[Deduction]]]) -> None:
    """Write these drafts and replace their deductions: three statements for any number of them."""
    if not drafts:
        return
    upsert(conn, invoices, [_draft_row(record) for record, _d in drafts], ["id"])
    ids = [record.id for record, _d in drafts]
    for chunk in chunks(ids, IN_CHUNK):
        conn.execute(delete(commit_deductions).where(commit_deductions.c.invoice_id.in_(chunk)))
    rows = [
        {
            "invoice_id": record.id,
            "segment_id": d.segment_id,
            "commit_id": d.commit_id,
            "amount": d.amount,
            "at_us": record.end_us,
        }
        for record, deductions in drafts
        for d in deductions
    ]
    if rows:
        conn.execute(commit_deductions.insert(), rows)


def _draft_row(record: InvoiceRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "customer_id": record.customer_id,
        "contract_id": record.contract_id,
        "credit_type_id": record.credit_type_id,
        "type": record.type,
        "status": DRAFT,
        "start_us": record.start_us,
        "end_us": record.end_us,
        "subtotal": record.subtotal,
        "total": record.total,
        "spend_by_credit_type": _encode(record.spend_by_credit_type).decode(),
        "line_items": _encode(record.line_items).decode(),
        "updated_at_us": record.updated_at_us,
        "finalized_at_us": None,
    }


def finalize(conn: Connection, invoice_ids: Sequence[str], at_us: int) -> None:
    if invoice_ids:
        conn.execute(
            update(invoices)
            .where(invoices.c.id.in_(list(invoice_ids)), invoices.c.status == DRAFT)
            .values(status=FINALIZED, finalized_at_us=at_us)
        )


def for_customer(conn: Connection, customer_id: str) -> list[InvoiceRecord]:
    rows = conn.execute(
        select(invoices)
        .where(invoices.c.customer_id == customer_id)
        .order_by(invoices.c.start_us, invoices.c.id)
    ).mappings()
    return [_record(row) for row in rows]


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
    """`deductions_for_customer` (drafts included) of many customers, one statement per chunk."""
    return grouped_by_customer(
        customer_ids,
        lambda chunk: (
            (r[0], (r[1], r[2], r[3], r[4], r[5]))
            for r in conn.execute(_deductions(among(conn, invoices.c.customer_id, chunk)))
        ),
    )


def get_invoice(conn: Connection, customer_id: str, id_: str) -> InvoiceRecord:
    row = (
        conn.execute(select(invoices).where(invoices.c.id == id_, invoices.c.customer_id == customer_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"invoice_id: no invoice {id_} for customer {customer_id}")
    return _record(row)


def due_for_finalization(
    conn: Connection, ended_before_us: int, limit: int = 500, partitions: frozenset[int] | None = None
) -> list[tuple[str, str]]:
    """(customer id, invoice id) of drafts whose period plus grace period is over, of customers
    of these home partitions (None: all)."""
    query = (
        select(invoices.c.customer_id, invoices.c.id)
        .where(invoices.c.status == DRAFT, invoices.c.end_us <= ended_before_us)
        .order_by(invoices.c.end_us)
        .limit(limit)
    )
    if partitions is not None:
        query = query.join(customers, customers.c.id == invoices.c.customer_id).where(
            customers.c.partition.in_(sorted(partitions))
        )
    return [(r[0], r[1]) for r in conn.execute(query)]


def deductions_for_customer(
    conn: Connection, customer_id: str, *, include_drafts: bool = True
) -> list[LedgerDeduction]:
    """(commit id, segment id, invoice id, amount, at) of every deduction (drafts unless excluded)."""
    conditions = [invoices.c.customer_id == customer_id]
    if not include_drafts:
        conditions.append(invoices.c.status == FINALIZED)
    return [(r[1], r[2], r[3], r[4], r[5]) for r in conn.execute(_deductions(*conditions))]


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
        .where(*conditions)
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
    )
