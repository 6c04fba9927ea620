"""Rendering a computed invoice as Metronome's line items (what the invoices API returns)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from meterline.domain.invoicing import AppliedLine, ConversionLine, InvoiceComputation, UsageLine
from meterline.domain.scheduled_items import COMMIT_PURCHASE, POSTPAID_TRUEUP, ScheduledItem
from meterline.domain.timeutil import format_rfc3339

# Metronome's names for a line item's product type and an applied balance's commit type.
PRODUCT_TYPES = {
    "USAGE": "UsageProductListItem",
    "FIXED": "FixedProductListItem",
    "SUBSCRIPTION": "SubscriptionProductListItem",
}
COMMIT_TYPES = {"PREPAID": "PrepaidCommit", "CREDIT": "PrepaidCommit", "POSTPAID": "PostpaidCommit"}


def line_items(
    computation: InvoiceComputation, credit_type_names: Mapping[str, str], start_us: int, end_us: int
) -> list[dict[str, Any]]:
    def credit_type(credit_type_id: str) -> dict[str, str]:
        return {"id": credit_type_id, "name": credit_type_names.get(credit_type_id, credit_type_id)}

    items = [
        _usage(line, credit_type(line.credit_type_id))
        if line.subscription is None
        else _subscription(line, credit_type(line.credit_type_id))
        for line in computation.usage_lines
    ]
    items += [
        _applied(a, credit_type(a.segment.credit_type_id), start_us, end_us) for a in computation.applied
    ]
    items += [_scheduled(s, credit_type(s.credit_type_id), start_us, end_us) for s in computation.scheduled]
    items += [
        _conversion(c, credit_type(computation.fiat_credit_type_id), credit_type_names)
        for c in computation.conversions
        if c.quantity != 0  # shown only when custom-unit balances left some spend uncovered
    ]
    return items


def _usage(line: UsageLine, credit_type: dict[str, str]) -> dict[str, Any]:
    product = line.product
    item: dict[str, Any] = {
        "name": product.name,
        "type": "usage",
        "credit_type": credit_type,
        "product_id": product.id,
        "product_type": PRODUCT_TYPES.get(product.type, product.type),
        "product_tags": list(product.tags),
        "product_custom_fields": dict(product.custom_fields),
        "quantity": line.quantity,
        "total": line.total,
        "starting_at": format_rfc3339(line.start_us),
        "ending_before": format_rfc3339(line.end_us),
        "sub_line_items": [_sub_line(line)],
    }
    if line.unit_price is not None:
        item["unit_price"] = line.unit_price
    if line.pricing_group_values:
        item["pricing_group_values"] = dict(line.pricing_group_values)
    if line.presentation_group_values:
        item["presentation_group_values"] = dict(line.presentation_group_values)
        if len(line.presentation_group_values) == 1:
            ((key, value),) = line.presentation_group_values.items()
            item["group_key"], item["group_value"] = key, value
    return item


def _subscription(line: UsageLine, credit_type: dict[str, str]) -> dict[str, Any]:
    """A subscription's charge for [starting_at, ending_before): Metronome's `subscription` line."""
    subscription = line.subscription
    assert subscription is not None
    product = line.product
    item: dict[str, Any] = {
        "name": subscription.name or product.name,
        "type": "subscription",
        "credit_type": credit_type,
        "product_id": product.id,
        "product_type": PRODUCT_TYPES["SUBSCRIPTION"],
        "product_tags": list(product.tags),
        "product_custom_fields": dict(product.custom_fields),
        "subscription_id": subscription.id,
        "subscription_custom_fields": dict(subscription.custom_fields),
        "quantity": line.quantity,
        "total": line.total,
        "is_prorated": line.is_prorated,
        "starting_at": format_rfc3339(line.start_us),
        "ending_before": format_rfc3339(line.end_us),
    }
    if line.unit_price is not None:
        item["unit_price"] = line.unit_price
    return item


def _sub_line(line: UsageLine) -> dict[str, Any]:
    sub: dict[str, Any] = {
        "name": line.product.name,
        "quantity": line.quantity,
        "subtotal": line.total,
        "custom_fields": {},
        "start_date": format_rfc3339(line.start_us),
        "end_date": format_rfc3339(line.end_us),
    }
    if line.unit_price is not None:
        sub["price"] = line.unit_price
    if line.tiers:
        sub["tiers"] = [
            {"price": t.price, "quantity": t.quantity, "starting_at": t.starting_at, "subtotal": t.subtotal}
            for t in line.tiers
        ]
    return sub


def _applied(applied: AppliedLine, credit_type: dict[str, str], start_us: int, end_us: int) -> dict[str, Any]:
    segment = applied.segment
    return {
        "name": segment.name or segment.kind.lower(),
        "type": "applied_commit_or_credit",
        "credit_type": credit_type,
        "total": -applied.amount,
        "quantity": Decimal(1),
        "unit_price": -applied.amount,
        "product_id": segment.product_id,
        "commit_id": segment.commit_id,
        "commit_segment_id": segment.segment_id,
        "commit_type": COMMIT_TYPES.get(segment.kind, segment.kind),
        "applied_commit_or_credit": {"id": segment.commit_id, "type": segment.kind},
        "starting_at": format_rfc3339(start_us),
        "ending_before": format_rfc3339(end_us),
    }


def _conversion(
    conversion: ConversionLine, fiat: dict[str, str], credit_type_names: Mapping[str, str]
) -> dict[str, Any]:
    unit = credit_type_names.get(conversion.credit_type_id, conversion.credit_type_id)
    return {
        "name": f"{unit} conversion",
        "type": "cpu_conversion",
        "credit_type": fiat,
        "quantity": conversion.quantity,
        "unit_price": conversion.fiat_per_unit,
        "total": conversion.total,
    }


def _scheduled(
    item: ScheduledItem, credit_type: dict[str, str], start_us: int, end_us: int
) -> dict[str, Any]:
    """A commit's purchase (`commit_purchase`, with its commit_id), a postpaid commit's true-up
    (`postpaid_trueup`, with its commit_id and `postpaid_commit`) or a scheduled charge
    (`scheduled`, with its scheduled_charge_id): a FIXED product's quantity at a unit price."""
    line: dict[str, Any] = {
        "name": item.name or "",
        "type": item.line_type,
        "credit_type": credit_type,
        "product_id": item.product_id,
        "product_type": PRODUCT_TYPES["FIXED"],
        "quantity": item.quantity,
        "unit_price": item.unit_price,
        "total": item.amount,
        "starting_at": format_rfc3339(start_us),
        "ending_before": format_rfc3339(end_us),
    }
    if item.line_type == COMMIT_PURCHASE:
        line |= {
            "commit_id": item.source_id,
            "commit_type": COMMIT_TYPES["PREPAID"],
            "commit_custom_fields": dict(item.custom_fields),
        }
    elif item.line_type == POSTPAID_TRUEUP:
        line |= {
            "commit_id": item.source_id,
            "commit_type": COMMIT_TYPES["POSTPAID"],
            "commit_custom_fields": dict(item.custom_fields),
            "postpaid_commit": {"id": item.source_id},
        }
    else:
        line |= {
            "scheduled_charge_id": item.source_id,
            "scheduled_charge_custom_fields": dict(item.custom_fields),
        }
    return line
