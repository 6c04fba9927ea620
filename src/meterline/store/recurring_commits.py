"""Recurring commits and credits of a contract, as given, and the commit each period creates
(an ordinary row of `commits`, naming the recurring commit it came from).

They are kept with their contract, in its `recurring` column, and never change once stored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meterline.domain.commit_rules import AccessItem
from meterline.domain.recurring import RecurringGrant, RecurringSpec, Rounding, SubscriptionLink
from meterline.store.commits import NewCommit, specifier_from_json, specifier_json


def to_json(spec: RecurringSpec) -> dict[str, Any]:
    return {
        "id": spec.id,
        "kind": spec.kind,
        "product_id": spec.product_id,
        "priority": _text(spec.priority),
        "starting_at_us": spec.starting_at_us,
        "ending_before_us": spec.ending_before_us,
        "unit_price": _text(spec.unit_price),
        "quantity": None if spec.quantity is None else _text(spec.quantity),
        "credit_type_id": spec.credit_type_id,
        "duration_periods": spec.duration_periods,
        "recurrence_frequency": spec.recurrence_frequency,
        "proration": spec.proration,
        "rounding": None
        if spec.rounding is None
        else {"decimal_places": spec.rounding.decimal_places, "method": spec.rounding.method},
        "name": spec.name,
        "description": spec.description,
        "applicable_product_ids": _list(spec.applicable_product_ids),
        "applicable_product_tags": _list(spec.applicable_product_tags),
        "specifiers": None if spec.specifiers is None else [specifier_json(s) for s in spec.specifiers],
        "subscription": None if spec.subscription is None else _link_json(spec.subscription),
    }


def _link_json(link: SubscriptionLink) -> dict[str, Any]:
    return {
        "subscription_id": link.subscription_id,
        "prorate_increases": link.prorate_increases,
        "allocation": link.allocation,
    }


def from_json(stored: dict[str, Any]) -> RecurringSpec:
    rounding = stored["rounding"]
    specifiers = stored["specifiers"]
    link = stored.get("subscription")  # stored before subscriptions could be linked: none
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
        rounding=None if rounding is None else Rounding(rounding["decimal_places"], rounding["method"]),
        name=stored["name"],
        description=stored["description"],
        applicable_product_ids=_tuple(stored["applicable_product_ids"]),
        applicable_product_tags=_tuple(stored["applicable_product_tags"]),
        specifiers=None if specifiers is None else tuple(specifier_from_json(s) for s in specifiers),
        subscription=None
        if link is None
        else SubscriptionLink(link["subscription_id"], link["prorate_increases"], link["allocation"]),
    )


def _text(value: Decimal) -> str:
    return format(value, "f")


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def _tuple(values: list[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


def period_commit(spec: RecurringSpec, grant: RecurringGrant) -> NewCommit:
    """The commit (or credit) a recurring commit creates for one period."""
    return period_commit_with(spec, (AccessItem(grant.amount, grant.starting_at_us, grant.ending_before_us),))


def period_commit_with(spec: RecurringSpec, access: tuple[AccessItem, ...]) -> NewCommit:
    """The commit a recurring commit creates for one period, with its access items."""
    return NewCommit(
        kind=spec.kind,
        product_id=spec.product_id,
        access=access,
        credit_type_id=spec.credit_type_id,
        name=spec.name,
        description=spec.description,
        priority=spec.priority,
        applicable_product_ids=spec.applicable_product_ids,
        applicable_product_tags=spec.applicable_product_tags,
        specifiers=spec.specifiers,
        recurring_id=spec.id,
    )
