"""Commits (PREPAID, POSTPAID) and credits (CREDIT), on a contract or on the customer.

Each access schedule item becomes a segment with its own id, which the billing engine draws
down and ledgers name. Invoice schedule items get ids too (Metronome shows them). A
customer-level commit that bills keeps the contract it is invoiced on in its invoice schedule.
A commit is in force unless it, or the contract it belongs to, is archived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from meterline.domain.commit_rules import (
    AccessItem,
    InvoiceSchedule,
    ProductScope,
    Scoped,
    Specifier,
    field_path,
    is_paid,
)
from meterline.domain.contracts import POSTPAID, PREPAID, AccessSegment, CommitTerms, RolledOverFrom
from meterline.domain.errors import Conflict
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID, new_id
from meterline.domain.scheduled_items import COMMIT_PURCHASE, POSTPAID_TRUEUP, ScheduledItem
from meterline.domain.seats import SeatScope
from meterline.domain.timeutil import now_us
from meterline.store.json_values import optional_list, optional_tuple
from meterline.store.sql import among, grouped_by_customer
from meterline.store.tables import commits, contracts

LIST_RATE = "LIST_RATE"
COMMIT_KINDS = (PREPAID, POSTPAID)
KEY_USED = "This uniqueness key has already been used."


@dataclass(frozen=True, slots=True)
class NewCommit:
    """A commit or credit as requested (`services.commits` checks it before it is stored)."""

    kind: str
    product_id: str
    access: tuple[AccessItem, ...]
    credit_type_id: str = USD_CENTS_CREDIT_TYPE_ID
    invoice: InvoiceSchedule | None = None
    invoice_contract_id: str | None = None
    name: str | None = None
    description: str | None = None
    priority: Decimal | None = None
    applicable_product_ids: tuple[str, ...] | None = None
    applicable_product_tags: tuple[str, ...] | None = None
    specifiers: tuple[Specifier, ...] | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)
    uniqueness_key: str | None = None
    amount: Decimal | None = None  # deprecated shorthand; must match the access schedule
    recurring_id: str | None = None  # the recurring commit or credit that created it for a period
    rollover_fraction: Decimal | None = None  # what share of its unused balance rolls over
    rolled_over_from: RolledOverFrom | None = None  # set: a rollover commit (the engine's)


@dataclass(frozen=True, slots=True)
class InvoiceItemRecord:
    id: str
    timestamp_us: int
    amount: Decimal
    unit_price: Decimal
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceScheduleRecord:
    credit_type_id: str
    do_not_invoice: bool
    items: tuple[InvoiceItemRecord, ...]
    invoice_contract_id: str | None  # customer-level commits only: the contract that bills it

    @property
    def bills(self) -> bool:
        return bool(self.items) and not self.do_not_invoice

    def scheduled_items(
        self, line_type: str, source_id: str, contract_id: str, product_id: str, **shown: Any
    ) -> tuple[ScheduledItem, ...]:
        """Its items as billed on the contract's invoices (none if it does not bill)."""
        if not self.bills:
            return ()
        return tuple(
            ScheduledItem(
                item_id=item.id,
                line_type=line_type,
                source_id=source_id,
                contract_id=contract_id,
                product_id=product_id,
                credit_type_id=self.credit_type_id,
                timestamp_us=item.timestamp_us,
                quantity=item.quantity,
                unit_price=item.unit_price,
                amount=item.amount,
                **shown,
            )
            for item in self.items
        )


@dataclass(frozen=True, slots=True)
class CommitRecord:
    id: str
    customer_id: str
    contract_id: str | None
    kind: str
    product_id: str
    name: str | None
    description: str | None
    priority: Decimal | None
    rate_type: str
    applicable_product_ids: list[str]
    applicable_product_tags: list[str]
    specifiers: list[dict[str, Any]]
    credit_type_id: str
    segments: tuple[AccessSegment, ...]
    invoice_schedule: InvoiceScheduleRecord | None
    custom_fields: dict[str, str]
    uniqueness_key: str | None
    created_at_us: int
    archived_at_us: int | None
    recurring_id: str | None = None
    rollover_fraction: Decimal | None = None
    rolled_over_from: RolledOverFrom | None = None

    @property
    def is_paid(self) -> bool:
        return is_paid(self.kind, self.invoice_schedule is not None and self.invoice_schedule.bills)

    def covers(self, at_us: int) -> bool:
        return any(s.accessible_at(at_us) for s in self.segments)

    def has_access_from(self, at_us: int) -> bool:
        return any(s.ending_before_us > at_us for s in self.segments)

    def has_access_before(self, at_us: int) -> bool:
        return any(s.starting_at_us < at_us for s in self.segments)

    def created_by(self, at_us: int) -> bool:
        """Whether the commit exists at `at_us`: a recurring commit's commit for a period is
        created when its period starts (the engine sees it before, as a segment to come)."""
        return self.recurring_id is None or self.segments[0].starting_at_us <= at_us

    def terms(self) -> CommitTerms:
        return CommitTerms(
            id=self.id,
            customer_id=self.customer_id,
            contract_id=self.contract_id,
            kind=self.kind,
            product_id=self.product_id,
            credit_type_id=self.credit_type_id,
            segments=self.segments,
            priority=self.priority,
            is_paid=self.is_paid,
            applicable_product_ids=frozenset(self.applicable_product_ids),
            applicable_product_tags=frozenset(self.applicable_product_tags),
            specifiers=tuple(self.specifiers),
            name=self.name,
            archived_at_us=self.archived_at_us,
            invoice_items=self._invoice_items(),
            recurring_id=self.recurring_id,
            rollover_fraction=self.rollover_fraction,
            rolled_over_from=self.rolled_over_from,
        )

    def _invoice_items(self) -> tuple[ScheduledItem, ...]:
        """A prepaid commit's purchase, or a postpaid commit's true-up (its amount the commit's, the
        engine bills what usage left of it), billed on its contract (or the one its invoices go on)."""
        schedule = self.invoice_schedule
        contract_id = self.contract_id or (schedule.invoice_contract_id if schedule is not None else None)
        if self.kind not in COMMIT_KINDS or schedule is None or contract_id is None:
            return ()
        return schedule.scheduled_items(
            COMMIT_PURCHASE if self.kind == PREPAID else POSTPAID_TRUEUP,
            self.id,
            contract_id,
            self.product_id,
            name=self.name,
            custom_fields=self.custom_fields,
        )


@dataclass(frozen=True, slots=True)
class CommitQuery:
    """Filters of customerCommits/list and customerCredits/list (times in epoch microseconds)."""

    kinds: tuple[str, ...]
    commit_id: str | None = None
    covering_us: int | None = None
    starting_at_us: int | None = None
    effective_before_us: int | None = None
    include_archived: bool = False
    include_contract_level: bool = False

    def matches(self, commit: CommitRecord) -> bool:
        if self.covering_us is not None and not commit.covers(self.covering_us):
            return False
        if self.starting_at_us is not None and not commit.has_access_from(self.starting_at_us):
            return False
        return self.effective_before_us is None or commit.has_access_before(self.effective_before_us)


def insert_commit(
    conn: Connection,
    customer_id: str,
    new: NewCommit,
    *,
    contract_id: str | None = None,
    path: str = "",
    created_at_us: int | None = None,
) -> str:
    """Store a commit or credit that `services.commits` has checked; 409 if its uniqueness key is
    taken. `path` prefixes error fields ("commits.0")."""
    commit_id = new_id()
    row = _row(new, commit_id, customer_id, contract_id, created_at_us or now_us())
    _insert(conn, row, new.uniqueness_key, path)
    return commit_id


def list_commits(
    conn: Connection, customer_id: str, query: CommitQuery, *, after_id: str | None, limit: int
) -> list[CommitRecord]:
    """The customer's commits (or credits) matching `query`, by id, after `after_id`."""
    conditions = [commits.c.customer_id == customer_id, commits.c.kind.in_(query.kinds)]
    if query.commit_id is not None:
        conditions.append(commits.c.id == query.commit_id)
    if not query.include_contract_level:
        conditions.append(commits.c.contract_id.is_(None))
    if not query.include_archived:
        conditions.append(_in_force())
    if after_id is not None:
        conditions.append(commits.c.id > after_id)
    now = now_us()
    found = [
        c for c in _select(conn, *conditions, order_by_id=True) if c.created_by(now) and query.matches(c)
    ]
    return found[:limit]


def get_commit(
    conn: Connection, customer_id: str, commit_id: str, kinds: Sequence[str]
) -> CommitRecord | None:
    """The customer's commit or credit with this id, of one of these kinds (archived ones too)."""
    found = _select(
        conn, commits.c.id == commit_id, commits.c.customer_id == customer_id, commits.c.kind.in_(list(kinds))
    )
    return found[0] if found and found[0].created_by(now_us()) else None


def commits_of_recurring(conn: Connection, recurring_id: str) -> list[CommitRecord]:
    """Every commit a recurring commit created, its periods to come included."""
    return _select(conn, commits.c.recurring_id == recurring_id)


def delete_commits(conn: Connection, commit_ids: Sequence[str]) -> None:
    """Drop commits no one has seen yet: those of a recurring commit's periods to come, made again
    when it is updated (nothing was drawn from them, and no invoice of theirs is finalized)."""
    if commit_ids:
        conn.execute(delete(commits).where(commits.c.id.in_(list(commit_ids))))


def mark_archived(conn: Connection, commit_ids: Sequence[str], archived_at_us: int) -> None:
    """Take these commits and credits out of billing (they stay readable, with `archived_at`)."""
    if commit_ids:
        query = update(commits).where(commits.c.id.in_(list(commit_ids)), commits.c.archived_at_us.is_(None))
        conn.execute(query.values(archived_at_us=archived_at_us))


def lock_commit(conn: Connection, commit_id: str) -> None:
    """Hold the commit's row until the transaction ends, so that two end-date updates of it
    (each checked against what it read) apply one after the other (PostgreSQL; SQLite has one writer)."""
    conn.execute(select(commits.c.id).where(commits.c.id == commit_id).with_for_update())


def set_schedules(
    conn: Connection, commit_id: str, segments: Sequence[AccessSegment], invoice: InvoiceScheduleRecord | None
) -> None:
    """Store a commit's access segments (ids kept) and invoice schedule as moved by an end-date update."""
    conn.execute(
        update(commits)
        .where(commits.c.id == commit_id)
        .values(
            access_segments=[_stored_segment(s) for s in segments],
            invoice_schedule=None if invoice is None else stored_schedule(invoice),
        )
    )


def set_details(
    conn: Connection,
    commit_id: str,
    *,
    name: str | None,
    description: str | None,
    priority: Decimal | None,
    applicable_product_ids: Sequence[str],
    applicable_product_tags: Sequence[str],
    specifiers: Sequence[Specifier],
) -> None:
    """Store what an edit set of a commit beside its schedules (v2 contracts/edit `update_commits`)."""
    conn.execute(
        update(commits)
        .where(commits.c.id == commit_id)
        .values(
            name=name,
            description=description,
            priority=priority,
            applicable_product_ids=list(applicable_product_ids),
            applicable_product_tags=list(applicable_product_tags),
            specifiers=[specifier_json(s) for s in specifiers],
        )
    )


def _stored_segment(segment: AccessSegment) -> dict[str, Any]:
    return {
        "id": segment.id,
        "amount": _text(segment.amount),
        "starting_at_us": segment.starting_at_us,
        "ending_before_us": segment.ending_before_us,
        **_seat_json(segment.seat),
    }


def _seat_json(seat: SeatScope | None) -> dict[str, Any]:
    """A seat's own balance names its seat; every other segment is stored as before."""
    return {} if seat is None else {"seat_group_key": seat.group_key, "seat_id": seat.seat_id}


def _seat(stored: dict[str, Any]) -> SeatScope | None:
    key = stored.get("seat_group_key")
    return None if key is None else SeatScope(key, stored.get("seat_id"))


def stored_schedule(invoice: InvoiceScheduleRecord) -> dict[str, Any]:
    return {
        "credit_type_id": invoice.credit_type_id,
        "do_not_invoice": invoice.do_not_invoice,
        "schedule_items": [
            {
                "id": item.id,
                "timestamp_us": item.timestamp_us,
                "amount": _text(item.amount),
                "unit_price": _text(item.unit_price),
                "quantity": _text(item.quantity),
            }
            for item in invoice.items
        ],
        "invoice_contract_id": invoice.invoice_contract_id,
    }


def commits_of_contracts(conn: Connection, contract_ids: Sequence[str]) -> dict[str, list[CommitRecord]]:
    """The commits and credits on each contract, in the order they were given (those a recurring
    commit creates, as each period starts)."""
    found: dict[str, list[CommitRecord]] = {contract_id: [] for contract_id in contract_ids}
    if contract_ids:
        now = now_us()
        for record in _select(conn, commits.c.contract_id.in_(list(contract_ids))):
            assert record.contract_id is not None
            if record.created_by(now):
                found[record.contract_id].append(record)
    return found


def commits_on_contract(conn: Connection, contract_id: str) -> list[CommitRecord]:
    """The commits and credits on a contract, in force, those of periods to come included."""
    return _select(conn, commits.c.contract_id == contract_id, _in_force())


def commits_for_customer(conn: Connection, customer_id: str) -> list[CommitTerms]:
    """Commits and credits in force: customer-level ones and those on contracts not archived."""
    return [r.terms() for r in _select(conn, commits.c.customer_id == customer_id, _in_force())]


def commits_for_customers(conn: Connection, customer_ids: Sequence[str]) -> dict[str, list[CommitTerms]]:
    """`commits_for_customer` of many customers in one statement per chunk (the evaluator's batch)."""
    return grouped_by_customer(
        customer_ids,
        lambda chunk: (
            (r.customer_id, r.terms())
            for r in _select(conn, among(conn, commits.c.customer_id, chunk), _in_force())
        ),
    )


def _in_force() -> Any:
    """Neither the commit nor its contract (if it has one) is archived."""
    return and_(
        commits.c.archived_at_us.is_(None),
        or_(commits.c.contract_id.is_(None), contracts.c.archived_at_us.is_(None)),
    )


def _insert(conn: Connection, row: dict[str, Any], uniqueness_key: str | None, path: str) -> None:
    if uniqueness_key is not None and _key_used(conn, uniqueness_key):
        raise Conflict(_key_conflict(path))
    try:
        with conn.begin_nested():
            conn.execute(commits.insert().values(**row))
    except IntegrityError:
        # Another request took the uniqueness key between our check and our insert.
        raise Conflict(_key_conflict(path)) from None


def _key_used(conn: Connection, uniqueness_key: str) -> bool:
    query = select(commits.c.id).where(commits.c.uniqueness_key == uniqueness_key)
    return conn.execute(query).first() is not None


def _key_conflict(path: str) -> str:
    """Metronome's own message; inside a contract, prefixed with the commit it is about."""
    return KEY_USED if not path else f"{field_path(path, 'uniqueness_key')}: {KEY_USED}"


def _row(
    new: NewCommit, commit_id: str, customer_id: str, contract_id: str | None, created_at_us: int
) -> dict[str, Any]:
    return {
        "id": commit_id,
        "customer_id": customer_id,
        "contract_id": contract_id,
        "kind": new.kind,
        "product_id": new.product_id,
        "name": new.name,
        "description": new.description,
        "priority": new.priority,
        "rate_type": LIST_RATE,
        "applicable_product_ids": list(new.applicable_product_ids or ()),
        "applicable_product_tags": list(new.applicable_product_tags or ()),
        "specifiers": [specifier_json(s) for s in new.specifiers or ()],
        "credit_type_id": new.credit_type_id,
        "access_segments": [_segment_json(item) for item in new.access],
        "invoice_schedule": new_schedule(new.invoice, new.invoice_contract_id)
        if new.invoice is not None
        else None,
        "custom_fields": new.custom_fields,
        "uniqueness_key": new.uniqueness_key,
        "created_at_us": created_at_us,
        "recurring_id": new.recurring_id,
        "rollover_fraction": new.rollover_fraction,
        "rolled_over_from": None if new.rolled_over_from is None else _rolled_json(new.rolled_over_from),
    }


def _rolled_json(rolled: RolledOverFrom) -> dict[str, Any]:
    return {
        "commit_id": rolled.commit_id,
        "contract_id": rolled.contract_id,
        "segments": {segment_id: _text(amount) for segment_id, amount in rolled.segments.items()},
    }


def _rolled(stored: dict[str, Any] | None) -> RolledOverFrom | None:
    if stored is None:
        return None
    return RolledOverFrom(
        stored["commit_id"],
        stored["contract_id"],
        {segment_id: Decimal(amount) for segment_id, amount in stored["segments"].items()},
    )


def _segment_json(item: AccessItem) -> dict[str, Any]:
    return {
        "id": new_id(),
        "amount": _text(item.amount),
        "starting_at_us": item.starting_at_us,
        "ending_before_us": item.ending_before_us,
        **_seat_json(item.seat),
    }


def new_schedule(schedule: InvoiceSchedule, invoice_contract_id: str | None = None) -> dict[str, Any]:
    """An invoice schedule as stored, its items given ids."""
    return {
        "credit_type_id": schedule.credit_type_id,
        "do_not_invoice": schedule.do_not_invoice,
        "schedule_items": [
            {
                "id": new_id(),
                "timestamp_us": item.timestamp_us,
                "amount": _text(item.amount),
                "unit_price": _text(item.unit_price),
                "quantity": _text(item.quantity),
            }
            for item in schedule.items
        ],
        "invoice_contract_id": invoice_contract_id,
    }


def specifier_from_json(stored: dict[str, Any]) -> Specifier:
    tags = stored.get("product_tags")
    return Specifier(
        stored.get("product_id"),
        None if tags is None else tuple(tags),
        stored.get("pricing_group_values"),
        stored.get("presentation_group_values"),
    )


def specifier_json(specifier: Specifier) -> dict[str, Any]:
    given = {
        "product_id": specifier.product_id,
        "product_tags": list(specifier.product_tags) if specifier.product_tags is not None else None,
        "pricing_group_values": specifier.pricing_group_values,
        "presentation_group_values": specifier.presentation_group_values,
    }
    return {k: v for k, v in given.items() if v is not None}


def scope_json(scoped: Scoped) -> dict[str, Any]:
    """What a recurring commit or threshold recharge applies to, as JSON (None where not given)."""
    specifiers = scoped.specifiers
    return {
        "applicable_product_ids": optional_list(scoped.applicable_product_ids),
        "applicable_product_tags": optional_list(scoped.applicable_product_tags),
        "specifiers": None if specifiers is None else [specifier_json(s) for s in specifiers],
    }


def scope_from_json(stored: dict[str, Any]) -> ProductScope:
    specifiers = stored["specifiers"]
    return ProductScope(
        applicable_product_ids=optional_tuple(stored["applicable_product_ids"]),
        applicable_product_tags=optional_tuple(stored["applicable_product_tags"]),
        specifiers=None if specifiers is None else tuple(specifier_from_json(s) for s in specifiers),
    )


def _text(value: Decimal) -> str:
    return format(value, "f")


def _select(conn: Connection, *conditions: Any, order_by_id: bool = False) -> list[CommitRecord]:
    query = (
        select(commits)
        .select_from(commits.outerjoin(contracts, contracts.c.id == commits.c.contract_id))
        .where(*conditions)
        .order_by(*((commits.c.id,) if order_by_id else (commits.c.created_at_us, commits.c.id)))
    )
    return [_record(row) for row in conn.execute(query).mappings()]


def _record(row: Any) -> CommitRecord:
    return CommitRecord(
        id=row["id"],
        customer_id=row["customer_id"],
        contract_id=row["contract_id"],
        kind=row["kind"],
        product_id=row["product_id"],
        name=row["name"],
        description=row["description"],
        priority=row["priority"],
        rate_type=row["rate_type"],
        applicable_product_ids=list(row["applicable_product_ids"] or []),
        applicable_product_tags=list(row["applicable_product_tags"] or []),
        specifiers=[dict(s) for s in row["specifiers"] or []],
        credit_type_id=row["credit_type_id"],
        segments=tuple(
            AccessSegment(s["id"], Decimal(s["amount"]), s["starting_at_us"], s["ending_before_us"], _seat(s))
            for s in row["access_segments"]
        ),
        invoice_schedule=schedule_record(row["invoice_schedule"]),
        custom_fields=dict(row["custom_fields"] or {}),
        uniqueness_key=row["uniqueness_key"],
        created_at_us=row["created_at_us"],
        archived_at_us=row["archived_at_us"],
        recurring_id=row["recurring_id"],
        rollover_fraction=row["rollover_fraction"],
        rolled_over_from=_rolled(row["rolled_over_from"]),
    )


def schedule_record(stored: dict[str, Any] | None) -> InvoiceScheduleRecord | None:
    if stored is None:
        return None
    return InvoiceScheduleRecord(
        credit_type_id=stored["credit_type_id"],
        do_not_invoice=bool(stored.get("do_not_invoice")),
        items=tuple(
            InvoiceItemRecord(
                id=item["id"],
                timestamp_us=item["timestamp_us"],
                amount=Decimal(item["amount"]),
                unit_price=Decimal(item["unit_price"]),
                quantity=Decimal(item["quantity"]),
            )
            for item in stored["schedule_items"]
        ),
        invoice_contract_id=stored.get("invoice_contract_id"),
    )
