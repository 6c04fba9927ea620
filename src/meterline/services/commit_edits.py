"""Updates of a contract's commits and credits (v2 contracts/edit `update_commits`, `update_credits`):
their access and invoice schedule items, the products they apply to, name, description, priority;
and of its scheduled charges' schedule items (`update_scheduled_charges`).

What finalized invoices drew or billed stays as it was (`domain.commit_edits`); the commit as
edited then meets the rules of a new one (`services.commits.check_edited_commit`). A commit a
recurring commit made for one of its periods is left to its recurring commit (refused). The
caller asks the engine to bill the customer again: drafts, balances and alerts follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.commit_edits import AccessEdit, InvoiceEdit, edited_access, edited_invoice_items
from meterline.domain.commit_rules import AccessItem, InvoiceItem, InvoiceSchedule, field_path
from meterline.domain.contracts import CREDIT
from meterline.domain.errors import InvalidInput
from meterline.services.commits import check_edited_commit
from meterline.store import commits, contracts, invoices
from meterline.store.commits import (
    COMMIT_KINDS,
    CommitRecord,
    InvoiceItemRecord,
    InvoiceScheduleRecord,
    NewCommit,
    specifier_from_json,
    stored_schedule,
)
from meterline.store.contracts import ContractRecord


@dataclass(frozen=True, slots=True)
class CommitUpdate:
    commit_id: str
    access: AccessEdit | None = None
    invoice: InvoiceEdit | None = None
    set_product_ids: bool = False  # applicable_product_ids given (None: none)
    applicable_product_ids: tuple[str, ...] | None = None
    set_product_tags: bool = False
    applicable_product_tags: tuple[str, ...] | None = None
    name: str | None = None  # None: unchanged
    description: str | None = None  # None: unchanged
    set_priority: bool = False
    priority: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ChargeUpdate:
    charge_id: str
    invoice: InvoiceEdit | None = None


def update_commits(
    conn: Connection, contract: ContractRecord, updates: Sequence[CommitUpdate], *, credits: bool
) -> None:
    """Apply `update_commits` (or, with `credits`, `update_credits`), all or nothing."""
    field, id_field, what = (
        ("update_credits", "credit_id", "credit") if credits else ("update_commits", "commit_id", "commit")
    )
    kinds = (CREDIT,) if credits else COMMIT_KINDS
    on_contract = {c.id: c for c in commits.commits_of_contracts(conn, [contract.id])[contract.id]}
    billed = invoices.schedule_items_billed(conn, contract.customer_id)
    for index, change in enumerate(updates):
        path = f"{field}.{index}"
        found = on_contract.get(change.commit_id)
        where = field_path(path, id_field)
        if found is None or found.kind not in kinds:
            raise InvalidInput(f"{where}: the contract has no {what} {change.commit_id}")
        if found.archived_at_us is not None:
            raise InvalidInput(f"{where}: {what} {found.id} is archived")
        if found.recurring_id is not None:
            raise InvalidInput(
                f"{where}: {what} {found.id} was made for one period of recurring {what} "
                f"{found.recurring_id}; meterline does not edit a period's {what} yet"
            )
        _apply(conn, found, change, billed, path)


def _apply(
    conn: Connection, found: CommitRecord, change: CommitUpdate, billed: dict[str, str], path: str
) -> None:
    segments = found.segments
    if change.access is not None:
        segments = edited_access(segments, change.access, invoices.drawn_by_segment(conn, found.id), path)
    schedule = found.invoice_schedule
    if change.invoice is not None:
        schedule = _edited_schedule(schedule, change.invoice, billed, path)
    product_ids = (
        change.applicable_product_ids if change.set_product_ids else tuple(found.applicable_product_ids)
    )
    product_tags = (
        change.applicable_product_tags if change.set_product_tags else tuple(found.applicable_product_tags)
    )
    priority = change.priority if change.set_priority else found.priority
    edited = NewCommit(
        kind=found.kind,
        product_id=found.product_id,
        access=tuple(AccessItem(s.amount, s.starting_at_us, s.ending_before_us, s.seat) for s in segments),
        credit_type_id=found.credit_type_id,
        invoice=None if schedule is None else _schedule(schedule),
        applicable_product_ids=product_ids or None,
        applicable_product_tags=product_tags or None,
        specifiers=tuple(specifier_from_json(s) for s in found.specifiers) or None,
    )
    check_edited_commit(conn, edited, path)
    commits.set_schedules(conn, found.id, segments, schedule)
    commits.set_details(
        conn,
        found.id,
        name=found.name if change.name is None else change.name,
        description=found.description if change.description is None else change.description,
        priority=priority,
        applicable_product_ids=product_ids or (),
        applicable_product_tags=product_tags or (),
    )


def update_charges(conn: Connection, contract: ContractRecord, updates: Sequence[ChargeUpdate]) -> None:
    """Apply `update_scheduled_charges`: their schedule items, as a commit's invoice schedule's."""
    billed = invoices.schedule_items_billed(conn, contract.customer_id)
    charges = {c.id: c for c in contract.scheduled_charges}
    for index, change in enumerate(updates):
        path = f"update_scheduled_charges.{index}"
        where = field_path(path, "scheduled_charge_id")
        charge = charges.get(change.charge_id)
        if charge is None:
            raise InvalidInput(f"{where}: contract {contract.id} has no scheduled charge {change.charge_id}")
        if charge.archived_at_us is not None:
            raise InvalidInput(f"{where}: scheduled charge {charge.id} is archived")
        if change.invoice is None:
            continue
        schedule = _edited_schedule(charge.schedule, change.invoice, billed, path)
        if not schedule.items:
            raise InvalidInput(
                f"{field_path(path, 'invoice_schedule')}: would leave the charge no schedule item; "
                "archive it instead (archive_scheduled_charges)"
            )
        contracts.set_charge_schedule(conn, contract.id, charge.id, stored_schedule(schedule))


def _edited_schedule(
    schedule: InvoiceScheduleRecord | None, edit: InvoiceEdit, billed: dict[str, str], path: str
) -> InvoiceScheduleRecord:
    if schedule is None:
        raise InvalidInput(
            f"{field_path(path, 'invoice_schedule')}: the commit has no invoice schedule to edit "
            "(meterline adds one only when the commit is created)"
        )
    items = [(i.id, InvoiceItem(i.timestamp_us, i.amount, i.unit_price, i.quantity)) for i in schedule.items]
    kept = edited_invoice_items(items, edit, billed, path)
    return InvoiceScheduleRecord(
        schedule.credit_type_id,
        schedule.do_not_invoice,
        tuple(
            InvoiceItemRecord(item_id, i.timestamp_us, i.amount, i.unit_price, i.quantity)
            for item_id, i in kept
        ),
        schedule.invoice_contract_id,
    )


def _schedule(record: InvoiceScheduleRecord) -> InvoiceSchedule:
    return InvoiceSchedule(
        record.credit_type_id,
        tuple(InvoiceItem(i.timestamp_us, i.amount, i.unit_price, i.quantity) for i in record.items),
        record.do_not_invoice,
    )
