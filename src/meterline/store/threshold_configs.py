"""A contract's threshold billing configurations as stored with it (`contracts.thresholds`), and
the commit a threshold buys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from meterline.domain.commit_rules import AccessItem, InvoiceItem, InvoiceSchedule
from meterline.domain.contracts import PREPAID
from meterline.domain.threshold_billing import ThresholdCommit, ThresholdConfig
from meterline.store.commits import NewCommit, scope_from_json, scope_json
from meterline.store.json_values import decimal_text


def to_json(config: ThresholdConfig) -> dict[str, Any]:
    commit = config.commit
    return {
        "kind": config.kind,
        "is_enabled": config.is_enabled,
        "threshold_amount": decimal_text(config.threshold_amount),
        "recharge_to_amount": None
        if config.recharge_to_amount is None
        else decimal_text(config.recharge_to_amount),
        "payment_gate_type": config.payment_gate_type,
        "commit": {
            "product_id": commit.product_id,
            "name": commit.name,
            "description": commit.description,
            "priority": None if commit.priority is None else decimal_text(commit.priority),
            **scope_json(commit),
            "duration_unit": commit.duration_unit,
            "duration_value": commit.duration_value,
            "rollover_fraction": None
            if commit.rollover_fraction is None
            else decimal_text(commit.rollover_fraction),
        },
    }


def from_json(stored: dict[str, Any]) -> ThresholdConfig:
    commit = stored["commit"]
    return ThresholdConfig(
        kind=stored["kind"],
        is_enabled=stored["is_enabled"],
        threshold_amount=Decimal(stored["threshold_amount"]),
        recharge_to_amount=None
        if stored["recharge_to_amount"] is None
        else Decimal(stored["recharge_to_amount"]),
        payment_gate_type=stored["payment_gate_type"],
        commit=ThresholdCommit(
            product_id=commit["product_id"],
            name=commit["name"],
            description=commit["description"],
            priority=None if commit["priority"] is None else Decimal(commit["priority"]),
            **scope_from_json(commit),
            duration_unit=commit["duration_unit"],
            duration_value=commit["duration_value"],
            # Absent from configurations stored before rollover was built: none.
            rollover_fraction=None
            if commit.get("rollover_fraction") is None
            else Decimal(commit["rollover_fraction"]),
        ),
    )


def bought_commit(
    config: ThresholdConfig, amount: Decimal, access: tuple[int, int], at_us: int, fiat_credit_type_id: str
) -> NewCommit:
    """The commit a threshold buys: `amount` accessible over `access`, billed by one invoice
    schedule item dated `at_us` (payment gate NONE: released at once)."""
    commit = config.commit
    start_us, end_us = access
    return NewCommit(
        kind=PREPAID,
        product_id=commit.product_id,
        access=(AccessItem(amount, start_us, end_us),),
        credit_type_id=fiat_credit_type_id,
        invoice=InvoiceSchedule(fiat_credit_type_id, (InvoiceItem(at_us, amount, amount, Decimal(1)),)),
        name=commit.name,
        description=commit.description,
        priority=commit.priority_in_force,
        applicable_product_ids=commit.applicable_product_ids,
        applicable_product_tags=commit.applicable_product_tags,
        specifiers=commit.specifiers,
        rollover_fraction=commit.rollover_fraction,
    )
