"""Invoice arithmetic: the line items always add up to the totals, whatever the usage and balances."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from meterline.domain.aggregation import Aggregate
from meterline.domain.invoicing import (
    CommitSegment,
    PricingInterval,
    ProductPricing,
    UsageLine,
    compute_invoice,
    sliced,
    usage_lines,
)
from meterline.domain.metrics import AggregationType
from meterline.domain.pricing import PriceSpec, Tier
from meterline.domain.products import ProductState
from meterline.domain.rates import RateInForce

D = Decimal
USD = "usd"
CPU = "tokens-unit"
amounts = st.decimals(min_value=0, max_value=10**5, places=2, allow_nan=False, allow_infinity=False)


def _line(product_id: str, credit_type_id: str, total: Decimal) -> UsageLine:
    product = ProductState(id=product_id, type="USAGE", name=product_id, billable_metric_id="m")
    return UsageLine(product, credit_type_id, total, D(1), total, 0, 1, {}, {})


@st.composite
def invoices(draw: st.DrawFn) -> tuple[list[UsageLine], list[CommitSegment]]:
    lines = [
        _line(draw(st.sampled_from(["p1", "p2"])), draw(st.sampled_from([USD, CPU])), draw(amounts))
        for _ in range(draw(st.integers(0, 5)))
    ]
    segments = [
        CommitSegment(
            commit_id=f"c{i}",
            segment_id=f"s{i}",
            kind=draw(st.sampled_from(["PREPAID", "POSTPAID", "CREDIT"])),
            name=f"c{i}",
            product_id="fixed",
            credit_type_id=draw(st.sampled_from([USD, CPU])),
            available=draw(amounts),
            priority=D(draw(st.integers(0, 2))),
            is_free=draw(st.booleans()),
            starts_us=0,
            ends_us=10,
            applicable_product_ids=frozenset(draw(st.sets(st.sampled_from(["p1", "p2"]), max_size=1))),
        )
        for i in range(draw(st.integers(0, 4)))
    ]
    return lines, segments


@given(invoices(), st.decimals(min_value=D("0.01"), max_value=100, places=2))
def test_line_items_add_up_to_the_totals(
    case: tuple[list[UsageLine], list[CommitSegment]], fiat_per_unit: Decimal
) -> None:
    lines, segments = case
    result = compute_invoice(lines, segments, USD, {CPU: fiat_per_unit})
    fiat_usage = sum((line.total for line in lines if line.credit_type_id == USD), D(0))
    cpu_usage = sum((line.total for line in lines if line.credit_type_id == CPU), D(0))
    fiat_reductions = sum(
        (
            a.amount
            for a in result.applied
            if a.segment.credit_type_id == USD and a.segment.kind != "POSTPAID"
        ),
        D(0),
    )
    conversions = sum((c.total for c in result.conversions), D(0))
    # Every line the invoice shows in its own credit type, except postpaid applications, adds up to the total.
    assert result.total == fiat_usage - fiat_reductions + conversions
    assert result.subtotal == fiat_usage + cpu_usage * fiat_per_unit
    assert result.total >= 0
    assert result.spend_by_credit_type.get(USD, D(0)) == fiat_usage
    for segment in segments:
        drawn = sum((a.amount for a in result.applied if a.segment.segment_id == segment.segment_id), D(0))
        assert drawn <= segment.available


def test_tiered_usage_invoice_by_hand() -> None:
    product = ProductState(id="p", type="USAGE", name="Tokens", billable_metric_id="m")
    rate = RateInForce("rc", "p", {}, True, USD, PriceSpec(tiers=(Tier(D(2), D(100)), Tier(D(1)))), 0, None)
    interval = PricingInterval(
        0,
        10,
        (ProductPricing(product, AggregationType.SUM, (rate,)),),
        {"m": [({}, Aggregate(count=2, total=D(120)))]},
    )
    lines = usage_lines(interval)
    assert [(line.quantity, line.total) for line in lines] == [(D(120), D(220))]  # 100*2 + 20*1
    commit = CommitSegment("c", "s", "PREPAID", "c", "f", USD, D(150), D(1), False, 0, 10)
    result = compute_invoice(lines, [commit], USD, {})
    assert (result.subtotal, result.total) == (D(220), D(70))


@given(st.lists(amounts, min_size=1, max_size=6))
def test_charge_slices_add_up_to_the_line_and_consume_tiers_in_time_order(parts: list[Decimal]) -> None:
    price = PriceSpec(tiers=(Tier(D(2), D(100)), Tier(D(1))))
    product = ProductState(id="p", type="USAGE", name="Tokens", billable_metric_id="m")
    total_quantity = sum(parts, D(0))
    charge = price.charge(total_quantity)
    line = UsageLine(
        product,
        USD,
        total_quantity,
        None,
        charge.total,
        0,
        len(parts),
        {},
        {},
        aggregation=AggregationType.SUM,
        price=price,
    )
    result = sliced(line, [(i, i + 1, q) for i, q in enumerate(parts)])
    assert sum((s.amount for s in result.slices), D(0)) == line.total
    # The first slice pays the first tier's price for its usage, up to the tier's size.
    first = min(parts[0], D(100))
    assert result.slices[0].amount == first * 2 + max(parts[0] - D(100), D(0)) * 1
