"""Recurring commits and credits of a contract, as given, and the commit each period creates
(an ordinary row of `commits`, naming the recurring commit it came from).

They are kept with their contract, in its `recurring` column, and never change once stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meterline.domain.commit_rules import AccessItem, InvoiceItem, InvoiceSchedule
from meterline.domain.recurring import (
    InvoiceAmount,
    RecurringGrant,
    RecurringSpec,
    Rounding,
    SubscriptionLink,
)
from meterline.domain.seat_allocation import PeriodGrant
from meterline.store.commits import NewCommit, scope_from_json, scope_json
from meterline.store.json_values import decimal_text


def to_json(spec: RecurringSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "kind": spec.kind,
        "product_id": spec.product_id,
        "priority": decimal_text(spec.priority),
        "starting_at_us": spec.starting_at_us,
        "ending_before_us": spec.ending_before_us,
        "unit_price": decimal_text(spec.unit_price),
        "quantity": None if spec.quantity is None else decimal_text(spec.quantity),
        "credit_type_id": spec.credit_type_id,
        "duration_periods": spec.duration_periods,
        "recurrence_frequency": spec.recurrence_frequency,
        "proration": spec.proration,
        "rounding": _rounding_json(spec.rounding),
        "invoice": None
        if spec.invoice is None
        else {
            "credit_type_id": spec.invoice.credit_type_id,
            "unit_price": decimal_text(spec.invoice.unit_price),
            "quantity": None if spec.invoice.quantity is None else decimal_text(spec.invoice.quantity),
        },
        "invoice_rounding": _rounding_json(spec.invoice_rounding),
        "name": spec.name,
        "description": spec.description,
        **scope_json(spec),
        "subscription": None if spec.subscription is None else _link_json(spec.subscription),
        "rollover_fraction": None if spec.rollover_fraction is None else decimal_text(spec.rollover_fraction),
    }


def _link_json(link: SubscriptionLink) -> dict[str, Any]:
    return {
        "subscription_id": link.subscription_id,
        "prorate_increases": link.prorate_increases,
        "allocation": link.allocation,
    }


def from_json(stored: dict[str, Any]) -> RecurringSpec:
    link = stored.get("subscription")  # stored before subscriptions could be linked: none
    invoice = stored.get("invoice")  # absent from those stored before recurring commits billed
    return RecurringSpec(
        id=stored["id"],
        kind=stored["kind"],
        product_id=stored["product_id"],
        priority=Decimal(stored["priority"]),
        starting_at_us=stored["starting_at_us"],
        ending_before_us=stored["ending_before_us"],
        unit_price=Decimal(stored["unit_price"]),
        quantity=None if stored["quantity"] is None else Decimal(stored["quantity"]),
        credit_type_id=stored["credit_type_id"],
        duration_periods=stored["duration_periods"],
        recurrence_frequency=stored["recurrence_frequency"],
        proration=stored["proration"],
        rounding=_rounding(stored["rounding"]),
        invoice=None
        if invoice is None
        else InvoiceAmount(
            invoice["credit_type_id"], Decimal(invoice["unit_price"]), _optional_decimal(invoice["quantity"])
        ),
        invoice_rounding=_rounding(stored.get("invoice_rounding")),
        name=stored["name"],
        description=stored["description"],
        **scope_from_json(stored),
        subscription=None
        if link is None
        else SubscriptionLink(link["subscription_id"], link["prorate_increases"], link["allocation"]),
        rollover_fraction=_optional_decimal(
            stored.get("rollover_fraction")
        ),  # absent: stored before rollover
    )


def _optional_decimal(stored: str | None) -> Decimal | None:
    return None if stored is None else Decimal(stored)


def _rounding_json(rounding: Rounding | None) -> dict[str, Any] | None:
    return (
        None if rounding is None else {"decimal_places": rounding.decimal_places, "method": rounding.method}
    )


def _rounding(stored: dict[str, Any] | None) -> Rounding | None:
    return None if stored is None else Rounding(stored["decimal_places"], stored["method"])


def period_commit(spec: RecurringSpec, grant: RecurringGrant) -> NewCommit:
    """The commit (or credit) a recurring commit creates for one period."""
    access = (AccessItem(grant.amount, grant.starting_at_us, grant.ending_before_us),)
    return period_commit_with(spec, PeriodGrant(access, grant.invoice_amount))


def period_commit_with(spec: RecurringSpec, grant: PeriodGrant) -> NewCommit:
    """The commit a recurring commit creates for one period, with its access items and invoice."""
    return NewCommit(
        kind=spec.kind,
        product_id=spec.product_id,
        access=grant.access,
        credit_type_id=spec.credit_type_id,
        name=spec.name,
        description=spec.description,
        priority=spec.priority,
        applicable_product_ids=spec.applicable_product_ids,
        applicable_product_tags=spec.applicable_product_tags,
        specifiers=spec.specifiers,
        invoice=_invoice(spec.invoice, grant),
        recurring_id=spec.id,
        rollover_fraction=spec.rollover_fraction,
    )


def _invoice(invoice: InvoiceAmount | None, grant: PeriodGrant) -> InvoiceSchedule | None:
    """The period's commit is billed once, on its period's start: the invoice amount as given
    for a whole period, else its prorated amount as one unit; tied to a subscription, as its
    quantity says (`domain.seat_allocation.invoice_items`)."""
    if invoice is None:
        return None
    if grant.invoice_items or (invoice.quantity is None and grant.invoice_amount is None):
        # Tied to a subscription: item by item, as its quantity goes (none yet at a quantity of 0:
        # a later increase adds them to this schedule).
        return InvoiceSchedule(invoice.credit_type_id, grant.invoice_items)
    if grant.invoice_amount is None:
        return None
    if grant.invoice_amount == invoice.amount and invoice.quantity is not None:
        unit_price, quantity = invoice.unit_price, invoice.quantity
    else:
        unit_price, quantity = grant.invoice_amount, Decimal(1)
    item = InvoiceItem(grant.starting_at_us, grant.invoice_amount, unit_price, quantity)
    return InvoiceSchedule(invoice.credit_type_id, (item,))
