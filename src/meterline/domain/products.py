"""Products and their history: each update takes effect at its `starting_at`.

A product is an initial version plus updates. Every version carries only the fields it sets, in
the API's JSON form; the product in force at an instant is the initial version with every update
whose `starting_at` is at or before that instant applied on top, in `starting_at` order (updates
with the same `starting_at` in the order they were made). The initial version has no
`starting_at`: it is in force from the beginning of time, so contracts and rates that start before
the product was created still find it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from meterline.domain.errors import InvalidInput
from meterline.domain.pricing import (
    ConversionOperation,
    QuantityConversion,
    QuantityRounding,
    RoundingMethod,
)

SUPPORTED_TYPES = ("USAGE", "FIXED", "SUBSCRIPTION")
UNSUPPORTED_TYPES = ("COMPOSITE", "PROFESSIONAL_SERVICE", "PRO_SERVICE")
# Fields that only mean something on a USAGE product: they say how its metric becomes a quantity.
USAGE_ONLY_FIELDS = (
    "billable_metric_id",
    "pricing_group_key",
    "presentation_group_key",
    "quantity_conversion",
    "quantity_rounding",
)


@dataclass(frozen=True, slots=True)
class ProductVersion:
    """One entry of a product's history: the fields it sets (JSON form) and when it takes effect."""

    fields: Mapping[str, Any]
    starting_at_us: int | None  # None: the initial version, in force from the beginning
    created_at_us: int
    created_by: str


@dataclass(frozen=True, slots=True)
class ProductState:
    """A product as the billing engine needs it at one instant."""

    id: str
    type: str
    name: str
    billable_metric_id: str | None = None
    tags: tuple[str, ...] = ()
    pricing_group_key: tuple[str, ...] = ()
    presentation_group_key: tuple[str, ...] = ()
    quantity_conversion: QuantityConversion | None = None
    quantity_rounding: QuantityRounding | None = None
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    archived_at_us: int | None = None


def refuse_unsupported_type(product_type: str) -> None:
    if product_type in UNSUPPORTED_TYPES:
        raise InvalidInput(
            f"type: meterline does not support {product_type} products yet; use USAGE, FIXED or SUBSCRIPTION"
        )
    if product_type not in SUPPORTED_TYPES:
        raise InvalidInput(f"type: must be one of {', '.join(SUPPORTED_TYPES)}")


def refuse_usage_fields_on(product_type: str, fields: Mapping[str, Any]) -> None:
    """FIXED and SUBSCRIPTION products have no metric, so the fields that shape metric quantities
    are errors on them."""
    if product_type == "USAGE":
        return
    for name in USAGE_ONLY_FIELDS:
        if fields.get(name) not in (None, []):
            raise InvalidInput(f"{name}: is only valid for USAGE products, not {product_type}")


def in_force(versions: Sequence[ProductVersion], at_us: int) -> list[ProductVersion]:
    """The versions that apply at `at_us`, in the order they apply (versions are in creation order)."""
    initial, updates = versions[0], versions[1:]
    applied = [v for v in updates if v.starting_at_us is not None and v.starting_at_us <= at_us]
    # sorted() is stable, so updates with equal starting_at keep the order they were made in.
    return [initial, *sorted(applied, key=lambda v: v.starting_at_us or 0)]


def merged_fields(versions: Sequence[ProductVersion]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for version in versions:
        merged.update(version.fields)
    return merged


def check_group_keys(fields: Mapping[str, Any], metric_dimensions: Sequence[str], metric_id: str) -> None:
    """Pricing and presentation keys must be group keys of the metric, or usage cannot be split by them."""
    for name in ("pricing_group_key", "presentation_group_key"):
        for key in fields.get(name) or []:
            if key not in metric_dimensions:
                raise InvalidInput(f"{name}: {key!r} is not a group key of billable metric {metric_id}")


def state_from_fields(
    product_id: str,
    product_type: str,
    fields: Mapping[str, Any],
    custom_fields: Mapping[str, str],
    archived_at_us: int | None,
) -> ProductState:
    return ProductState(
        id=product_id,
        type=product_type,
        name=fields["name"],
        billable_metric_id=fields.get("billable_metric_id"),
        tags=tuple(fields.get("tags") or ()),
        pricing_group_key=tuple(fields.get("pricing_group_key") or ()),
        presentation_group_key=tuple(fields.get("presentation_group_key") or ()),
        quantity_conversion=_conversion(fields.get("quantity_conversion")),
        quantity_rounding=_rounding(fields.get("quantity_rounding")),
        custom_fields=dict(custom_fields),
        archived_at_us=archived_at_us,
    )


def _conversion(value: Mapping[str, Any] | None) -> QuantityConversion | None:
    if not value:
        return None
    return QuantityConversion(
        factor=Decimal(value["conversion_factor"]), operation=ConversionOperation(value["operation"])
    )


def _rounding(value: Mapping[str, Any] | None) -> QuantityRounding | None:
    if not value:
        return None
    return QuantityRounding(
        decimal_places=int(value["decimal_places"]), method=RoundingMethod(value["rounding_method"])
    )
