"""Updates of a contract's commits and credits (v2 contracts/edit `update_commits`, `update_credits`):
their access and invoice schedule items, the products they apply to, name, description, priority;
and of its scheduled charges' schedule items (`update_scheduled_charges`). v2 contracts/commits/edit
and contracts/credits/edit (`edit_commit`) update one commit or credit, of a contract or of the
customer, by the same rules, and may also change its specifiers and (a customer's commit) the
contract its invoices go on.

What finalized invoices drew or billed stays as it was (`domain.commit_edits`); the commit as
edited then meets the rules of a new one (`services.commits.check_edited_commit`). A commit a
recurring commit made for one of its periods is left to its recurring commit (refused). The
caller asks the engine to bill the customer again: drafts, balances and alerts follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import Connection

from meterline.domain.commit_edits import AccessEdit, InvoiceEdit, edited_access, edited_invoice_items
from meterline.domain.commit_rules import AccessItem, InvoiceItem, InvoiceSchedule, Specifier, field_path
from meterline.domain.contracts import CREDIT
from meterline.domain.errors import InvalidInput, NotFound
from meterline.services.commits import check_edited_commit
from meterline.store import commits, contracts, invoices, partitions
from meterline.store.billing_requests import request_recompute
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
    set_specifiers: bool = False  # specifiers given (None: none); commits/edit and credits/edit only
    specifiers: tuple[Specifier, ...] | None = None
    invoice_contract_id: str | None = None  # None: unchanged; a customer's commit only


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
        _check_editable(found, what, where)
        _apply(conn, found, change, billed, path)


def edit_commit(conn: Connection, customer_id: str, change: CommitUpdate, *, credits: bool) -> None:
    """v2 contracts/commits/edit (or, with `credits`, contracts/credits/edit): one commit or credit
    of the customer's or of one of its contracts, by the rules of `update_commits`. Its fields are
    named as the request names them (no prefix); an unknown id is a 404. The engine is asked to
    bill the customer again: drafts, balances and alerts follow."""
    id_field, what = ("credit_id", "credit") if credits else ("commit_id", "commit")
    # In the order contracts/customerCommits/updateEndDate takes them: the commit, then the customer.
    commits.lock_commit(conn, change.commit_id)
    partitions.lock_home_partition(conn, customer_id)  # no batch finalizes a drawdown from it meanwhile
    found = commits.get_commit(conn, customer_id, change.commit_id, (CREDIT,) if credits else COMMIT_KINDS)
    if found is None:
        raise NotFound(f"{id_field}: customer {customer_id} has no {what} with id {change.commit_id}")
    if found.contract_id is not None:
        contract = contracts.get_contract(conn, customer_id, found.contract_id)
        if contract.archived_at_us is not None:
            raise InvalidInput(f"{id_field}: {what} {found.id} is on archived contract {contract.id}")
    _check_editable(found, what, id_field)
    _apply(conn, found, change, invoices.schedule_items_billed(conn, customer_id), "")
    request_recompute(conn, customer_id)


def _check_editable(found: CommitRecord, what: str, where: str) -> None:
    if found.archived_at_us is not None:
        raise InvalidInput(f"{where}: {what} {found.id} is archived")
    if found.recurring_id is not None:
        raise InvalidInput(
            f"{where}: {what} {found.id} was made for one period of recurring {what} "
            f"{found.recurring_id}; meterline does not edit a period's {what} yet"
        )


def _apply(
    conn: Connection, found: CommitRecord, change: CommitUpdate, billed: dict[str, str], path: str
) -> None:
    segments = found.segments
    if change.access is not None:
        segments = edited_access(segments, change.access, invoices.drawn_by_segment(conn, found.id), path)
    schedule = found.invoice_schedule
    if change.invoice is not None:
        schedule = _edited_schedule(schedule, change.invoice, billed, path)
    invoice_contract_id = _invoice_contract(found, schedule, change, path)
    if schedule is not None:
        schedule = replace(schedule, invoice_contract_id=invoice_contract_id)
    product_ids = (
        change.applicable_product_ids if change.set_product_ids else tuple(found.applicable_product_ids)
    )
    product_tags = (
        change.applicable_product_tags if change.set_product_tags else tuple(found.applicable_product_tags)
    )
    specifiers = (
        change.specifiers
        if change.set_specifiers
        else tuple(specifier_from_json(s) for s in found.specifiers)
    )
    priority = change.priority if change.set_priority else found.priority
    edited = NewCommit(
        kind=found.kind,
        product_id=found.product_id,
        access=tuple(AccessItem(s.amount, s.starting_at_us, s.ending_before_us, s.seat) for s in segments),
        credit_type_id=found.credit_type_id,
        invoice=None if schedule is None else _schedule(schedule),
        invoice_contract_id=invoice_contract_id,
        applicable_product_ids=product_ids or None,
        applicable_product_tags=product_tags or None,
        specifiers=specifiers or None,
    )
    # The contract that bills it is checked when the edit names one: an edit of anything else keeps
    # a customer's commit billing where it did, even on a contract archived since.
    moved = change.invoice_contract_id is not None
    check_edited_commit(conn, edited, path, customer_id=found.customer_id if moved else None)
    commits.set_schedules(conn, found.id, segments, schedule)
    commits.set_details(
        conn,
        found.id,
        name=found.name if change.name is None else change.name,
        description=found.description if change.description is None else change.description,
        priority=priority,
        applicable_product_ids=product_ids or (),
        applicable_product_tags=product_tags or (),
        specifiers=specifiers or (),
    )


def _invoice_contract(
    found: CommitRecord, schedule: InvoiceScheduleRecord | None, change: CommitUpdate, path: str
) -> str | None:
    """The contract a customer's commit bills on, as edited (a contract's commit bills on its own)."""
    kept = None if schedule is None else schedule.invoice_contract_id
    if change.invoice_contract_id is None:
        return kept
    where = field_path(path, "invoice_contract_id")
    if found.contract_id is not None:
        raise InvalidInput(
            f"{where}: applies to a customer's commit only; commit {found.id} is on contract "
            f"{found.contract_id} and is invoiced there"
        )
    if schedule is None:
        raise InvalidInput(f"{where}: commit {found.id} has no invoice schedule to invoice")
    return change.invoice_contract_id


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
