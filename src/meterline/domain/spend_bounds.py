"""How far usage can move money: the most a batch's usage of a metric can change a customer's
spend in each credit type, from the prices that could apply to it.

Rates are FLAT or TIERED, so a line's charge is a piecewise-linear function of its billable
quantity whose slopes are its prices: it moves by at most |quantity change| x the largest price
in magnitude. A billable quantity is the raw usage converted (x or / a factor) and then rounded,
and rounding can add at most one rounding step per line, so each event is also allowed one step.
Every rate of the product counts (whatever its pricing group), with every override of the
contract that could apply (an overwrite's own prices; the largest multiplier), so a group value
never seen before is covered too. Custom pricing units converted to fiat move the fiat spend by
their price x the conversion rate as well.

Only COUNT and SUM aggregations move by at most the size of what was added; for MAX, LATEST and
UNIQUE no such bound holds, and they are left out (`UNBOUNDED`): any usage of theirs moves
anything.

A commit or credit balance, an invoice total and a group's spend each move by at most the spend
of their credit type: drawdown applies at most what the charges grew by.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from meterline.domain.invoicing import ProductPricing
from meterline.domain.metrics import AggregationType
from meterline.domain.pricing import ConversionOperation, PriceSpec

ZERO = Decimal(0)
ONE = Decimal(1)
BOUNDED = (AggregationType.COUNT, AggregationType.SUM)


@dataclass(frozen=True, slots=True)
class UnitBound:
    """The most one unit of raw usage, and each event besides (rounding), can move spend."""

    per_unit: Decimal
    per_event: Decimal

    def of(self, magnitude: Decimal, events: int) -> Decimal:
        return self.per_unit * magnitude + self.per_event * events

    def widest(self, other: UnitBound) -> UnitBound:
        return UnitBound(max(self.per_unit, other.per_unit), max(self.per_event, other.per_event))


# metric id -> credit type id -> bound; a metric absent from the bounds of a customer's prices
# moves nothing it pays for.
SpendBounds = dict[str, dict[str, UnitBound]]
UNBOUNDED = UnitBound(Decimal("Infinity"), Decimal("Infinity"))


def spend_bounds(
    products: Iterable[ProductPricing], fiat: str, fiat_per_custom_unit: Mapping[str, Decimal]
) -> SpendBounds:
    """Bounds of these products' usage, per metric and credit type (the rate card's fiat credit
    type and its conversions from each custom pricing unit to it given)."""
    bounds: SpendBounds = {}
    for pricing in products:
        metric_id = pricing.product.billable_metric_id
        if metric_id is None:
            continue
        for credit_type_id, bound in _product_bounds(pricing, fiat_per_custom_unit, fiat):
            widen(bounds, metric_id, credit_type_id, bound)
    return bounds


def widen(bounds: SpendBounds, metric_id: str, credit_type_id: str, bound: UnitBound) -> None:
    per_type = bounds.setdefault(metric_id, {})
    known = per_type.get(credit_type_id)
    per_type[credit_type_id] = bound if known is None else known.widest(bound)


def merged(all_bounds: Iterable[SpendBounds]) -> SpendBounds:
    result: SpendBounds = {}
    for bounds in all_bounds:
        for metric_id, per_type in bounds.items():
            for credit_type_id, bound in per_type.items():
                widen(result, metric_id, credit_type_id, bound)
    return result


def _product_bounds(
    pricing: ProductPricing, fiat_per_custom_unit: Mapping[str, Decimal], fiat: str
) -> Iterable[tuple[str, UnitBound]]:
    if pricing.aggregation not in BOUNDED:
        for credit_type_id in _credit_types(pricing, fiat):
            yield credit_type_id, UNBOUNDED
        return
    product = pricing.product
    per_raw_unit = ONE
    if product.quantity_conversion is not None:
        factor = abs(product.quantity_conversion.factor)
        divides = product.quantity_conversion.operation is ConversionOperation.DIVIDE
        per_raw_unit = ONE / factor if divides else factor
    step = ZERO
    if product.quantity_rounding is not None:
        step = ONE.scaleb(-product.quantity_rounding.decimal_places)
    multiplier = max([ONE, *(abs(o.multiplier) for o in pricing.overrides if o.multiplier is not None)])
    by_type: dict[str, Decimal] = {}
    for rate in pricing.rates:
        price = _largest(rate.price) * multiplier
        by_type[rate.credit_type_id] = max(by_type.get(rate.credit_type_id, ZERO), price)
    for override in pricing.overrides:
        overwrite_type = override.overwrite_credit_type_id or _rate_type(pricing)
        if override.overwrite is not None and overwrite_type is not None:
            price = _largest(override.overwrite)
            by_type[overwrite_type] = max(by_type.get(overwrite_type, ZERO), price)
    for credit_type_id, price in list(by_type.items()):
        rate_to_fiat = fiat_per_custom_unit.get(credit_type_id)
        if rate_to_fiat is not None:
            by_type[fiat] = by_type.get(fiat, ZERO) + price * abs(rate_to_fiat)
    for credit_type_id, price in by_type.items():
        yield credit_type_id, UnitBound(price * per_raw_unit, price * step)


def _largest(spec: PriceSpec) -> Decimal:
    prices = [t.price for t in spec.tiers] if spec.is_tiered else [spec.price or ZERO]
    return max(abs(p) for p in prices)


def _rate_type(pricing: ProductPricing) -> str | None:
    return pricing.rates[0].credit_type_id if pricing.rates else None


def _credit_types(pricing: ProductPricing, fiat: str) -> set[str]:
    found = {r.credit_type_id for r in pricing.rates}
    found |= {o.overwrite_credit_type_id for o in pricing.overrides if o.overwrite_credit_type_id}
    return found | {fiat}
