"""Pricing and drawdown rules, checked by hand on examples and by hypothesis on everything else."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.drawdown import Balance, ChargeLine, draw_down, drawdown_order
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
    tiered_charge,
)

D = Decimal
quantities = st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)
sizes = st.decimals(min_value=D("0.001"), max_value=10**4, places=3, allow_nan=False, allow_infinity=False)


@st.composite
def tier_lists(draw: st.DrawFn) -> list[Tier]:
    bounded = draw(st.lists(st.tuples(prices, sizes), max_size=4))
    return [Tier(p, s) for p, s in bounded] + [Tier(draw(prices), None)]


def test_tiered_example_by_hand() -> None:
    # 0-100 at 10, next 400 at 5, the rest at 1: 250 units = 100*10 + 150*5 = 1750
    charge = tiered_charge(D(250), [Tier(D(10), D(100)), Tier(D(5), D(400)), Tier(D(1))])
    assert charge.total == D(1750)
    assert [(t.quantity, t.starting_at, t.subtotal) for t in charge.tiers] == [
        (D(100), D(0), D(1000)),
        (D(150), D(100), D(750)),
    ]


@given(tier_lists(), st.lists(quantities, min_size=1, max_size=8))
def test_tiered_total_of_a_period_does_not_depend_on_how_usage_arrived(
    tiers: list[Tier], parts: list[Decimal]
) -> None:
    # Usage is summed before pricing; the tiers of the sum equal the sum of the tier quantities.
    whole = tiered_charge(sum(parts, D(0)), tiers)
    assert sum((t.quantity for t in whole.tiers), D(0)) == sum(parts, D(0))
    assert whole.total == sum((t.subtotal for t in whole.tiers), D(0))


@given(tier_lists(), quantities, quantities)
def test_tiered_charge_is_monotonic_in_quantity(tiers: list[Tier], a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert tiered_charge(low, tiers).total <= tiered_charge(high, tiers).total


@given(prices, quantities)
def test_single_unbounded_tier_is_a_flat_rate(price: Decimal, quantity: Decimal) -> None:
    assert tiered_charge(quantity, [Tier(price)]).total == PriceSpec(price=price).charge(quantity).total


def test_quantity_conversion_then_rounding() -> None:
    # bytes -> GB, rounded up to whole GB
    conversion = QuantityConversion(D(1_000_000_000), ConversionOperation.DIVIDE)
    rounding = QuantityRounding(0, RoundingMethod.ROUND_UP)
    assert billable_quantity(D(1_500_000_001), conversion, rounding) == D(2)
    assert billable_quantity(D("2.345"), None, QuantityRounding(2, RoundingMethod.ROUND_HALF_UP)) == D("2.35")
    assert billable_quantity(D("2.349"), None, QuantityRounding(2, RoundingMethod.ROUND_DOWN)) == D("2.34")


def test_overwrite_beats_multiplier_and_lowest_multiplier_wins() -> None:
    list_rate = PriceSpec(price=D(10))
    overwrite = Override(overwrite=PriceSpec(price=D(7)))
    assert apply_overrides(list_rate, [Override(multiplier=D("0.5")), overwrite]) == PriceSpec(price=D(7))
    assert apply_overrides(
        list_rate, [Override(multiplier=D("0.9")), Override(multiplier=D("0.8"))]
    ).price == D(8)
    assert apply_overrides(list_rate, []).price == D(10)


@st.composite
def drawdown_cases(draw: st.DrawFn) -> tuple[list[ChargeLine], list[Balance]]:
    products = ["p1", "p2", "p3"]
    charges = [
        ChargeLine(key=p, product_id=p, amount=draw(quantities)) for p in products if draw(st.booleans())
    ]
    balances = []
    for i in range(draw(st.integers(0, 4))):
        scope = draw(st.lists(st.sampled_from(products), unique=True, max_size=3))
        balances.append(
            Balance(
                id=f"b{i}",
                kind=draw(st.sampled_from(["PREPAID", "CREDIT"])),
                available=draw(quantities),
                priority=D(draw(st.integers(0, 3))),
                is_free=draw(st.booleans()),
                applicable_product_count=len(scope),
                access_ends_us=draw(st.integers(0, 10)),
                access_starts_us=0,
                applies_to=(lambda c, s=frozenset(scope): not s or c.product_id in s),
            )
        )
    return charges, balances


@given(drawdown_cases())
def test_drawdown_never_overdraws_and_never_leaves_a_coverable_charge(
    case: tuple[list[ChargeLine], list[Balance]],
) -> None:
    charges, balances = case
    applications = draw_down(charges, balances)
    used = {b.id: sum((a.amount for a in applications if a.balance_id == b.id), D(0)) for b in balances}
    covered = {c.key: sum((a.amount for a in applications if a.charge_key == c.key), D(0)) for c in charges}
    for balance in balances:
        assert used[balance.id] <= balance.available
    for charge in charges:
        assert covered[charge.key] <= charge.amount
        if covered[charge.key] < charge.amount:
            for balance in balances:
                if balance.applies_to(charge):
                    assert used[balance.id] == balance.available, (
                        "a charge is uncovered while a balance remains"
                    )
    assert all(a.amount > 0 for a in applications)


def test_drawdown_order_priority_then_free_then_specific_then_ending_first() -> None:
    def balance(id_: str, priority: int, free: bool, products: int, ends: int) -> Balance:
        return Balance(id_, "CREDIT", D(1), D(priority), free, products, ends, 0, lambda _c: True)

    ordered = drawdown_order(
        [
            balance("late-paid-any", 1, False, 0, 9),
            balance("paid-specific", 1, False, 1, 9),
            balance("free", 1, True, 0, 9),
            balance("urgent", 0, False, 0, 9),
            balance("paid-specific-ends-sooner", 1, False, 1, 5),
        ]
    )
    assert [b.id for b in ordered] == [
        "urgent",
        "free",
        "paid-specific-ends-sooner",
        "paid-specific",
        "late-paid-any",
    ]
