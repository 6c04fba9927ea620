"""How far usage can move money: the most a batch's usage of a metric can raise, and lower, a
customer's spend in each credit type, from the prices that could apply to it.

Rates are FLAT or TIERED, so a line's charge is a piecewise-linear function of its billable
quantity whose slopes are its prices: usage added raises it by at most the amount x the largest
price and lowers it by at most the amount x the most negative price (none, usually), and usage
taken away (negative values) the other way round. A billable quantity is the raw usage converted (x or / a factor) and then rounded;
a rounded quantity is within a step of the exact one, so the difference of two is within two
steps of the exact difference, and each event (a line at most) is allowed two steps besides.
Every rate of the product counts (whatever its pricing group), with every override of the
contract that could apply (an overwrite's own prices; the largest multiplier), so a group value
never seen before is covered too. Custom pricing units converted to fiat move the fiat spend by
their price x the conversion rate as well.

Only COUNT and SUM aggregations move by at most the size of what was added; for MAX, LATEST and
UNIQUE no such bound holds, and they are left out (`UNBOUNDED`): any usage of theirs moves
anything.

Charges are computed in Decimal's default context (28 digits), so a quotient (a DIVIDE conversion)
is rounded: two charges differ from the exact ones by ulps of their own size. Bounds are exact;
whoever compares one with a distance between amounts takes `RELATIVE_MARGIN` of those amounts'
size off the distance first.

A group's spend and an invoice total rise and fall with the spend of their credit type, by at
most as much; a commit or credit balance falls when it rises and rises when it falls, by at most
as much: drawdown applies at most what the charges grew by, and gives back at most what they lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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
    """The most one unit of raw usage added can raise (`rise`) and lower (`fall`) spend, and what
    each event may add besides, either way (`per_event`: rounding)."""

    rise: Decimal
    fall: Decimal
    per_event: Decimal

    def raised(self, added: Decimal, removed: Decimal, events: int) -> Decimal:
        """The most spend can rise by, for usage `added` and `removed` (both >= 0). Rounding is
        monotone: it adds its step only to a move that happens at all."""
        return self._with_rounding(_times(self.rise, added) + _times(self.fall, removed), events)

    def lowered(self, added: Decimal, removed: Decimal, events: int) -> Decimal:
        return self._with_rounding(_times(self.fall, added) + _times(self.rise, removed), events)

    def moved(self, added: Decimal, removed: Decimal, events: int) -> tuple[Decimal, Decimal]:
        """(`raised`, `lowered`) at once: the engine asks both of every customer a batch touches."""
        if not removed:  # usage only added, nearly always: half the products are nothing
            rise, fall = _times(self.rise, added), _times(self.fall, added)
        else:
            rise = _times(self.rise, added) + _times(self.fall, removed)
            fall = _times(self.fall, added) + _times(self.rise, removed)
        if rise > 0 or fall > 0:
            step = _times(self.per_event, Decimal(events))
            rise, fall = (rise + step if rise > 0 else rise), (fall + step if fall > 0 else fall)
        return rise, fall

    def _with_rounding(self, move: Decimal, events: int) -> Decimal:
        return move + _times(self.per_event, Decimal(events)) if move > 0 else move

    def widest(self, other: UnitBound) -> UnitBound:
        return UnitBound(
            max(self.rise, other.rise), max(self.fall, other.fall), max(self.per_event, other.per_event)
        )

    def plus(self, other: UnitBound) -> UnitBound:
        return UnitBound(self.rise + other.rise, self.fall + other.fall, self.per_event + other.per_event)


# metric id -> credit type id -> bound; a metric absent from the bounds of a customer's prices
# moves nothing it pays for.
SpendBounds = dict[str, dict[str, UnitBound]]
INFINITY = Decimal("Infinity")
# Far above 28-digit rounding (1e-27 relative), far below anything money cares about.
RELATIVE_MARGIN = Decimal("1e-20")
UNBOUNDED = UnitBound(INFINITY, INFINITY, INFINITY)


def _times(bound: Decimal, amount: Decimal) -> Decimal:
    """bound x amount, where nothing moved is nothing, even for an unbounded price (Infinity x 0)."""
    return ZERO if amount == 0 or bound == 0 else bound * amount


def spend_bounds(
    intervals: Iterable[Iterable[ProductPricing]], fiat: str, fiat_per_custom_unit: Mapping[str, Decimal]
) -> SpendBounds:
    """Bounds of one invoice's usage, per metric and credit type, from the products priced in each
    of its pricing intervals (the rate card's fiat credit type and conversions given). Every
    product of a metric prices each of its events (their bounds add up); an event falls in one
    interval (the widest interval's bound holds)."""
    bounds: SpendBounds = {}
    for products in intervals:
        in_interval: SpendBounds = {}
        for pricing in products:
            metric_id = pricing.product.billable_metric_id
            if metric_id is not None:
                for credit_type_id, bound in _product_bounds(pricing, fiat_per_custom_unit, fiat):
                    _combine(in_interval, metric_id, credit_type_id, bound, UnitBound.plus)
        _merge_into(bounds, in_interval, UnitBound.widest)
    return bounds


def summed(invoices: Iterable[SpendBounds]) -> SpendBounds:
    """The bounds of several invoices together: an event may count on each of them (several
    contracts price the same usage), so their bounds add up."""
    result: SpendBounds = {}
    for bounds in invoices:
        _merge_into(result, bounds, UnitBound.plus)
    return result


def _merge_into(
    result: SpendBounds, bounds: SpendBounds, combine: Callable[[UnitBound, UnitBound], UnitBound]
) -> None:
    for metric_id, per_type in bounds.items():
        for credit_type_id, bound in per_type.items():
            _combine(result, metric_id, credit_type_id, bound, combine)


def _combine(
    bounds: SpendBounds,
    metric_id: str,
    credit_type_id: str,
    bound: UnitBound,
    combine: Callable[[UnitBound, UnitBound], UnitBound],
) -> None:
    per_type = bounds.setdefault(metric_id, {})
    known = per_type.get(credit_type_id)
    per_type[credit_type_id] = bound if known is None else combine(known, bound)


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
        step = 2 * ONE.scaleb(-product.quantity_rounding.decimal_places)  # see the module's doc
    # Any multiplier may apply (a negative one turns prices around): the widest of them, and 1.
    multipliers = [ONE, *(o.multiplier for o in pricing.overrides if o.multiplier is not None)]
    by_type: dict[str, tuple[Decimal, Decimal]] = {}  # credit type -> (rise, fall) per billable unit

    def widen_type(credit_type_id: str, rise: Decimal, fall: Decimal) -> None:
        known = by_type.get(credit_type_id, (ZERO, ZERO))
        by_type[credit_type_id] = (max(known[0], rise), max(known[1], fall))

    for rate in pricing.rates:
        for multiplier in multipliers:
            widen_type(rate.credit_type_id, *_slopes(rate.price, multiplier))
    for override in pricing.overrides:
        overwrite_type = override.overwrite_credit_type_id or _rate_type(pricing)
        if override.overwrite is not None and overwrite_type is not None:
            widen_type(overwrite_type, *_slopes(override.overwrite, ONE))
    for credit_type_id, (rise, fall) in list(by_type.items()):
        rate_to_fiat = fiat_per_custom_unit.get(credit_type_id)
        if rate_to_fiat is not None:  # converted to fiat at a positive rate
            known = by_type.get(fiat, (ZERO, ZERO))
            by_type[fiat] = (known[0] + rise * rate_to_fiat, known[1] + fall * rate_to_fiat)
    for credit_type_id, (rise, fall) in by_type.items():
        yield credit_type_id, UnitBound(rise * per_raw_unit, fall * per_raw_unit, max(rise, fall) * step)


def _slopes(spec: PriceSpec, multiplier: Decimal) -> tuple[Decimal, Decimal]:
    """(most positive slope, most negative slope's magnitude) of the spec's charge, both >= 0."""
    prices = (
        [t.price * multiplier for t in spec.tiers] if spec.is_tiered else [(spec.price or ZERO) * multiplier]
    )
    return max(ZERO, *prices), max(ZERO, *(-p for p in prices))


def _rate_type(pricing: ProductPricing) -> str | None:
    return pricing.rates[0].credit_type_id if pricing.rates else None


def _credit_types(pricing: ProductPricing, fiat: str) -> set[str]:
    found = {r.credit_type_id for r in pricing.rates}
    found |= {o.overwrite_credit_type_id for o in pricing.overrides if o.overwrite_credit_type_id}
    return found | {fiat}
