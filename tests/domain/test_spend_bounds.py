"""What a batch of usage can do to a line's charge stays within `domain.spend_bounds`, for any
flat or tiered price (negative ones included), multiplier, quantity conversion and rounding."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from meterline.domain.invoicing import ProductPricing
from meterline.domain.metrics import AggregationType
from meterline.domain.pricing import (
    ConversionOperation,
    Override,
    PriceSpec,
    QuantityConversion,
    QuantityRounding,
    RoundingMethod,
    Tier,
    apply_overrides,
    billable_quantity,
)
from meterline.domain.products import ProductState
from meterline.domain.rates import RateInForce
from meterline.domain.spend_bounds import RELATIVE_MARGIN, UNBOUNDED, UnitBound, spend_bounds

USD = "usd"
METRIC = "metric"
prices = st.decimals(min_value=-50, max_value=500, places=3)
amounts = st.decimals(min_value=-100, max_value=1000, places=4)


@st.composite
def price_specs(draw: st.DrawFn) -> PriceSpec:
    if draw(st.booleans()):
        return PriceSpec(price=draw(prices))
    sizes = draw(st.lists(st.decimals(min_value=1, max_value=200, places=2), min_size=0, max_size=3))
    tiers = [Tier(draw(prices), size) for size in sizes] + [Tier(draw(prices))]
    return PriceSpec(tiers=tuple(tiers))


conversions = st.none() | st.builds(
    QuantityConversion,
    st.decimals(min_value=Decimal("0.01"), max_value=1000, places=2),
    st.sampled_from(list(ConversionOperation)),
)
roundings = st.none() | st.builds(QuantityRounding, st.integers(0, 3), st.sampled_from(list(RoundingMethod)))
multipliers = st.none() | st.decimals(min_value=-2, max_value=5, places=2)


@settings(max_examples=500)
@given(
    spec=price_specs(),
    multiplier=multipliers,
    conversion=conversions,
    rounding=roundings,
    before=amounts,
    batch=st.lists(amounts, min_size=1, max_size=5),
)
def test_a_batch_moves_a_charge_no_further_than_its_bounds(
    spec: PriceSpec,
    multiplier: Decimal | None,
    conversion: QuantityConversion | None,
    rounding: QuantityRounding | None,
    before: Decimal,
    batch: list[Decimal],
) -> None:
    product = ProductState(
        "p", "USAGE", "p", METRIC, quantity_conversion=conversion, quantity_rounding=rounding
    )
    rate = RateInForce("card", "p", {}, True, USD, spec, 0, None)
    overrides = () if multiplier is None else (Override(multiplier=multiplier),)
    pricing = ProductPricing(product, AggregationType.SUM, (rate,), overrides)
    bound = spend_bounds([[pricing]], USD, {})[METRIC][USD]

    price = apply_overrides(spec, overrides, False)

    def charge(raw: Decimal) -> Decimal:
        return price.charge(billable_quantity(raw, conversion, rounding)).total

    first, then = charge(before), charge(before + sum(batch, Decimal(0)))
    added = sum((a for a in batch if a > 0), Decimal(0))
    removed = sum((-a for a in batch if a < 0), Decimal(0))
    rounding_noise = (abs(first) + abs(then)) * RELATIVE_MARGIN
    assert then - first <= bound.raised(added, removed, len(batch)) + rounding_noise
    assert first - then <= bound.lowered(added, removed, len(batch)) + rounding_noise


def test_aggregations_that_can_jump_are_unbounded() -> None:
    product = ProductState("p", "USAGE", "p", METRIC)
    rate = RateInForce("card", "p", {}, True, USD, PriceSpec(price=Decimal(1)), 0, None)
    pricing = ProductPricing(product, AggregationType.MAX, (rate,))
    assert spend_bounds([[pricing]], USD, {})[METRIC][USD] == UNBOUNDED


bound_values = st.decimals(min_value=0, max_value=500, places=3) | st.just(Decimal("Infinity"))
moves = st.decimals(min_value=0, max_value=1000, places=4)


@settings(max_examples=500)
@given(
    bound=st.builds(UnitBound, bound_values, bound_values, bound_values),
    added=moves,
    removed=moves,
    events=st.integers(1, 50),
)
def test_both_ways_at_once_is_each_way_on_its_own(
    bound: UnitBound, added: Decimal, removed: Decimal, events: int
) -> None:
    """What the engine takes from a headroom per customer (`moved`) is what `raised` and
    `lowered` say, for any bound (unbounded ones too) and any usage added and removed."""
    assert bound.moved(added, removed, events) == (
        bound.raised(added, removed, events),
        bound.lowered(added, removed, events),
    )
