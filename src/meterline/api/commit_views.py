"""Commits and credits as Metronome's API shows them (the SDK's shared `Commit` and `Credit`).

Optional fields are left out when they have no value, as Metronome does. Balances and ledgers
are derived (`services.billing`), only when asked for, since that derives the customer's drafts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from meterline.api.catalog_fields import API_ACTOR
from meterline.api.routes.common import optional_time
from meterline.domain.contracts import CREDIT
from meterline.domain.timeutil import format_rfc3339, now_us
from meterline.services import billing
from meterline.settings import Settings
from meterline.store import credit_types, products
from meterline.store.balances import CommitBalance
from meterline.store.commits import CommitRecord, InvoiceItemRecord, InvoiceScheduleRecord


@dataclass(frozen=True, slots=True)
class CommitExtras:
    """What a view shows beyond the record: names, and balances if they were asked for."""

    product_names: Mapping[str, str]
    credit_type_names: Mapping[str, str]
    balances: Mapping[str, CommitBalance] | None = None  # None: not asked for
    include_balance: bool = False
    include_ledgers: bool = False
    item_invoices: Mapping[str, str] = field(default_factory=dict)  # schedule item id -> invoice id


def commit_extras(
    conn: Connection,
    customer_id: str,
    records: Iterable[CommitRecord],
    *,
    settings: Settings,
    product_ids: Iterable[str] = (),
    include_balance: bool = False,
    include_ledgers: bool = False,
) -> CommitExtras:
    now = now_us()
    wanted = {r.product_id for r in records} | set(product_ids)
    names = {p.id: p.name for p in products.products_at(conn, sorted(wanted), now).values()}
    found = None
    if include_balance or include_ledgers:
        found = billing.commit_balances(
            billing.customer_billing(conn, customer_id, settings.open_horizon_us(), now), now
        )
    return CommitExtras(
        names,
        credit_types.names_by_id(conn),
        found,
        include_balance,
        include_ledgers,
        billing.schedule_item_invoices(conn, customer_id),
    )


def commit_view(commit: CommitRecord, extras: CommitExtras) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": commit.id,
        "type": commit.kind,
        "product": {"id": commit.product_id, "name": extras.product_names.get(commit.product_id, "")},
        "access_schedule": _access_view(commit, extras),
        "rate_type": commit.rate_type,
        "custom_fields": commit.custom_fields,
        "created_at": format_rfc3339(commit.created_at_us),
    }
    if commit.rolled_over_from is None:  # Metronome omits it on the commits it makes itself
        view["created_by"] = API_ACTOR
    view.update(_optional_fields(commit))
    if commit.kind != CREDIT and commit.invoice_schedule is not None:
        view["invoice_schedule"] = _invoice_view(commit.invoice_schedule, extras)
        invoice_contract = commit.contract_id or commit.invoice_schedule.invoice_contract_id
        if invoice_contract is not None:
            view["invoice_contract"] = {"id": invoice_contract}
    view.update(_balance_fields(commit, extras))
    return view


def _optional_fields(commit: CommitRecord) -> dict[str, Any]:
    given: dict[str, Any] = {
        "contract": {"id": commit.contract_id} if commit.contract_id else None,
        "name": commit.name,
        "description": commit.description,
        "priority": commit.priority,
        "applicable_product_ids": commit.applicable_product_ids or None,
        "applicable_product_tags": commit.applicable_product_tags or None,
        "specifiers": commit.specifiers or None,
        "uniqueness_key": commit.uniqueness_key,
        "archived_at": optional_time(commit.archived_at_us),
        ("recurring_credit_id" if commit.kind == CREDIT else "recurring_commit_id"): commit.recurring_id,
        "rollover_fraction": commit.rollover_fraction,
        "rolled_over_from": None
        if commit.rolled_over_from is None
        else {
            "commit_id": commit.rolled_over_from.commit_id,
            "contract_id": commit.rolled_over_from.contract_id,
        },
    }
    return {k: v for k, v in given.items() if v is not None}


def _access_view(commit: CommitRecord, extras: CommitExtras) -> dict[str, Any]:
    return {
        "credit_type": _credit_type(commit.credit_type_id, extras),
        "schedule_items": [
            {
                "id": s.id,
                "amount": s.amount,
                "starting_at": format_rfc3339(s.starting_at_us),
                "ending_before": format_rfc3339(s.ending_before_us),
            }
            for s in commit.segments
        ],
    }


def _invoice_view(schedule: InvoiceScheduleRecord, extras: CommitExtras) -> dict[str, Any]:
    return {"do_not_invoice": schedule.do_not_invoice} | schedule_view(schedule, extras)


def schedule_view(schedule: InvoiceScheduleRecord, extras: CommitExtras) -> dict[str, Any]:
    """The SDK's SchedulePointInTime: its items with ids, and the invoice billing each."""
    return {
        "credit_type": _credit_type(schedule.credit_type_id, extras),
        "schedule_items": [_item_view(i, extras.item_invoices.get(i.id)) for i in schedule.items],
    }


def _item_view(item: InvoiceItemRecord, invoice_id: str | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": item.id,
        "amount": item.amount,
        "unit_price": item.unit_price,
        "quantity": item.quantity,
        "timestamp": format_rfc3339(item.timestamp_us),
    }
    if invoice_id is not None:
        view["invoice_id"] = invoice_id
    return view


def _balance_fields(commit: CommitRecord, extras: CommitExtras) -> dict[str, Any]:
    """Balances exist for commits in force; archived ones (or on archived contracts) show none."""
    found = extras.balances.get(commit.id) if extras.balances is not None else None
    if found is None:
        return {}
    shown: dict[str, Any] = {}
    if extras.include_balance:
        shown["balance"] = found.balance
    if extras.include_ledgers:
        shown["ledger"] = found.ledger
    return shown


def _credit_type(credit_type_id: str, extras: CommitExtras) -> dict[str, str]:
    return {"id": credit_type_id, "name": extras.credit_type_names.get(credit_type_id, "")}
