"""Recurring commits and credits as Metronome's contract views show them (the SDK's
`ContractWithoutAmendments.RecurringCommit` and `RecurringCredit`)."""

from __future__ import annotations

from typing import Any

from meterline.api.commit_views import CommitExtras, subscription_config_view
from meterline.domain.recurring import RecurringSpec
from meterline.domain.timeutil import format_rfc3339
from meterline.store.commits import LIST_RATE, scope_json


def recurring_view(
    spec: RecurringSpec, contract_id: str, statement_anchor_us: int, extras: CommitExtras
) -> dict[str, Any]:
    """`statement_anchor_us`: where the contract's usage statement periods are anchored, which
    a recurring commit without its own recurrence_frequency follows."""
    anchor_us = spec.starting_at_us if spec.recurrence_frequency is not None else statement_anchor_us
    view: dict[str, Any] = {
        "id": spec.id,
        "access_amount": {
            "credit_type_id": spec.credit_type_id,
            "unit_price": spec.unit_price,
            "access_type": "SPEND",
        },
        "anchor_date": format_rfc3339(anchor_us),
        "commit_duration": {"value": spec.duration_periods, "unit": "PERIODS"},
        "priority": spec.priority,
        "product": {"id": spec.product_id, "name": extras.product_names.get(spec.product_id, "")},
        "rate_type": LIST_RATE,
        "starting_at": format_rfc3339(spec.starting_at_us),
        "contract": {"id": contract_id},
        "proration": spec.proration,
    }
    if spec.quantity is not None:  # with a subscription, the quantity is the subscription's
        view["access_amount"]["quantity"] = spec.quantity
    optional: dict[str, Any] = {
        "ending_before": None if spec.ending_before_us is None else format_rfc3339(spec.ending_before_us),
        "recurrence_frequency": spec.recurrence_frequency,
        "name": spec.name,
        "description": spec.description,
        **scope_json(spec),
        "invoice_amount": None
        if spec.invoice is None
        else {  # with a subscription, the quantity is the subscription's
            k: v
            for k, v in (
                ("credit_type_id", spec.invoice.credit_type_id),
                ("unit_price", spec.invoice.unit_price),
                ("quantity", spec.invoice.quantity),
            )
            if v is not None
        },
        "proration_rounding": _rounding_view(spec),
        "rollover_fraction": spec.rollover_fraction,
    }
    link = spec.subscription
    if link is not None:
        optional["subscription_config"] = subscription_config_view(link)
    view.update({k: v for k, v in optional.items() if v is not None})
    return view


def _rounding_view(spec: RecurringSpec) -> dict[str, Any] | None:
    shown = {
        part: {"decimal_places": rounding.decimal_places, "rounding_method": rounding.method}
        for part, rounding in (("access", spec.rounding), ("invoice", spec.invoice_rounding))
        if rounding is not None
    }
    return shown or None
