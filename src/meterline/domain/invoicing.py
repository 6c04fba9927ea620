"""A usage invoice, computed from usage aggregates: line items, drawdown, totals.

Computation is pure and whole: the invoice of a period is always recomputed from the period's
usage (never patched event by event), so tiers, late events, drawdown order and custom pricing
units are right by construction.

Subscription charges (`subscription_line`) are lines like usage lines: commits and credits draw
them down, and they count in the subtotal and total; they are not usage, so they are not in
`spend_by_credit_type` (what spend alerts measure).

Totals, per the invoice's (fiat) credit type:
- `subtotal` is the spend before drawdown: fiat usage and subscription charges plus custom-unit
  charges converted to fiat;
- `total` = fiat usage charges - prepaid commit and credit applications in fiat + the
  `cpu_conversion` lines (custom-unit charges not covered by custom-unit balances, in fiat).
  Postpaid commit applications are shown but do not reduce the total: a postpaid commit is
  billed in arrears, usage counts towards it.
Scheduled lines (commit purchases and scheduled charges: `domain.scheduled_items`) add to both;
no commit or credit draws them down (Metronome applies balances to usage only).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from meterline.domain.aggregation import Aggregate
from meterline.domain.drawdown import Application, Balance, ChargeLine, draw_down
from meterline.domain.metrics import AggregationType
from meterline.domain.pricing import (
    Override,
    PriceSpec,
    TierCharge,
    apply_overrides,
    billable_quantity,
    to_fiat,
    winning_overwrite,
)
from meterline.domain.products import ProductState
from meterline.domain.rates import RateInForce
from meterline.domain.scheduled_items import ScheduledItem
from meterline.domain.seats import SeatScope
from meterline.domain.subscriptions import PeriodCharge, SubscriptionTerms

ZERO = Decimal(0)
Group = Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class ProductPricing:
    """A USAGE product of the contract's rate card, as it stands during one pricing interval."""

    product: ProductState
    aggregation: AggregationType
    rates: tuple[RateInForce, ...]
    overrides: tuple[Override, ...] = ()
    explicit_override_priority: bool = False  # the contract's EXPLICIT multiplier prioritization


@dataclass(frozen=True, slots=True)
class PricingInterval:
    """Part of a billing period during which rates, overrides and products do not change."""

    start_us: int
    end_us: int
    products: tuple[ProductPricing, ...]
    usage: Mapping[str, Sequence[tuple[Group, Aggregate]]]  # metric id -> usage per group


@dataclass(frozen=True, slots=True)
class ChargeSlice:
    """The part of a line's charge due to usage within [start, end): what a segment accessible
    only then may cover."""

    start_us: int
    end_us: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class UsageLine:
    product: ProductState
    credit_type_id: str
    quantity: Decimal
    unit_price: Decimal | None
    total: Decimal
    start_us: int
    end_us: int
    pricing_group_values: Mapping[str, str]
    presentation_group_values: Mapping[str, str | None]
    tiers: tuple[TierCharge, ...] = ()
    aggregation: AggregationType | None = None
    price: PriceSpec | None = None  # the rate in force after overrides
    slices: tuple[ChargeSlice, ...] = ()  # empty: the whole charge belongs to the whole interval
    subscription: SubscriptionTerms | None = None  # set on a subscription's charge
    is_prorated: bool = False  # a subscription's charge for part of a period

    def charge_slices(self) -> tuple[ChargeSlice, ...]:
        return self.slices or (ChargeSlice(self.start_us, self.end_us, self.total),)

    def in_group(self, group: Mapping[str, str | None]) -> bool:
        """Whether usage of this group (full metric dimensions) is priced on this line."""
        return all(
            group.get(k) == self.pricing_group_values.get(k) for k in self.product.pricing_group_key
        ) and all(
            group.get(k) == self.presentation_group_values.get(k) for k in self.product.presentation_group_key
        )


def sliced(line: UsageLine, raw_by_slice: Sequence[tuple[int, int, Decimal]]) -> UsageLine:
    """Attribute the line's charge to consecutive time slices by pricing cumulative usage.

    Slice k is charged price(usage up to k) - price(usage before k), so graduated tiers are
    consumed in time order and the slices add up to the line's total exactly.
    """
    if line.price is None or line.aggregation not in (AggregationType.COUNT, AggregationType.SUM):
        return line  # MAX, LATEST and UNIQUE do not split over time: the whole interval it is
    product = line.product
    cumulative = ZERO
    charged = ZERO
    slices: list[ChargeSlice] = []
    for start_us, end_us, raw in raw_by_slice:
        cumulative += raw
        total = line.price.charge(
            billable_quantity(cumulative, product.quantity_conversion, product.quantity_rounding)
        ).total
        slices.append(ChargeSlice(start_us, end_us, total - charged))
        charged = total
    if slices and charged != line.total:  # usage read in slices differs from the interval's: keep the total
        last = slices[-1]
        slices[-1] = ChargeSlice(last.start_us, last.end_us, last.amount + line.total - charged)
    return replace(line, slices=tuple(slices))


@dataclass(frozen=True, slots=True)
class CommitSegment:
    """One access segment of a commit or credit, with what is left of it for this invoice."""

    commit_id: str
    segment_id: str
    kind: str  # PREPAID, POSTPAID or CREDIT
    name: str
    product_id: str
    credit_type_id: str
    available: Decimal
    priority: Decimal
    is_free: bool
    starts_us: int
    ends_us: int
    applicable_product_ids: frozenset[str] = frozenset()
    applicable_product_tags: frozenset[str] = frozenset()
    specifiers: tuple[Mapping[str, object], ...] = ()
    seat: SeatScope | None = None  # set: one seat's own balance, drawn by that seat's usage only
    is_rollover: bool = False  # a rollover commit's, drawn down before every other

    def applies_to(self, line: UsageLine) -> bool:
        if self.seat is not None and (
            line.subscription is not None
            or not self.seat.carried_by(line.pricing_group_values, line.presentation_group_values)
        ):
            return False
        if not (self.applicable_product_ids or self.applicable_product_tags or self.specifiers):
            return True
        product = line.product
        if product.id in self.applicable_product_ids or self.applicable_product_tags & set(product.tags):
            return True
        return any(_specifier_matches(spec, line) for spec in self.specifiers)

    @property
    def scope_size(self) -> int:
        return len(self.applicable_product_ids) + len(self.applicable_product_tags) + len(self.specifiers)


@dataclass(frozen=True, slots=True)
class AppliedLine:
    segment: CommitSegment
    amount: Decimal  # positive; shown on the invoice as a negative total


@dataclass(frozen=True, slots=True)
class ConversionLine:
    credit_type_id: str  # the custom pricing unit converted
    quantity: Decimal  # custom units not covered by custom-unit balances
    fiat_per_unit: Decimal
    total: Decimal  # in the invoice's fiat credit type


@dataclass(slots=True)
class InvoiceComputation:
    fiat_credit_type_id: str
    usage_lines: list[UsageLine] = field(default_factory=list)
    applied: list[AppliedLine] = field(default_factory=list)
    conversions: list[ConversionLine] = field(default_factory=list)
    spend_by_credit_type: dict[str, Decimal] = field(default_factory=dict)
    scheduled: list[ScheduledItem] = field(default_factory=list)
    subtotal: Decimal = ZERO
    total: Decimal = ZERO

    def bill_scheduled(self, items: Sequence[ScheduledItem]) -> None:
        """Add these schedule items (in this invoice's credit type) as lines of their own."""
        charged = sum((item.amount for item in items), ZERO)
        self.scheduled.extend(items)
        self.subtotal += charged
        self.total += charged


def usage_lines(interval: PricingInterval) -> list[UsageLine]:
    lines: list[UsageLine] = []
    for pricing in interval.products:
        metric_id = pricing.product.billable_metric_id
        if metric_id is None:
            continue
        for (pricing_values, presentation_values), aggregate in _grouped(
            pricing, interval.usage.get(metric_id, ())
        ):
            line = _price_group(pricing, pricing_values, presentation_values, aggregate, interval)
            if line is not None:
                lines.append(line)
    return lines


def compute_invoice(
    lines: Sequence[UsageLine],
    segments: Sequence[CommitSegment],
    fiat_credit_type_id: str,
    fiat_per_custom_unit: Mapping[str, Decimal],
) -> InvoiceComputation:
    result = InvoiceComputation(fiat_credit_type_id, usage_lines=list(lines))
    by_credit_type: dict[str, list[UsageLine]] = defaultdict(list)
    for line in lines:
        by_credit_type[line.credit_type_id].append(line)
    for credit_type_id, typed_lines in sorted(by_credit_type.items()):
        charged = sum((line.total for line in typed_lines), ZERO)
        result.spend_by_credit_type[credit_type_id] = sum(
            (line.total for line in typed_lines if line.subscription is None), ZERO
        )
        applications = _draw(typed_lines, [s for s in segments if s.credit_type_id == credit_type_id])
        result.applied.extend(applications)
        owed_reduction = sum((a.amount for a in applications if a.segment.kind != "POSTPAID"), ZERO)
        if credit_type_id == fiat_credit_type_id:
            result.subtotal += charged
            result.total += charged - owed_reduction
            continue
        rate = fiat_per_custom_unit.get(credit_type_id)
        if rate is None:
            raise ValueError(f"no conversion from pricing unit {credit_type_id} to {fiat_credit_type_id}")
        uncovered = charged - owed_reduction
        conversion = ConversionLine(credit_type_id, uncovered, rate, to_fiat(uncovered, rate))
        result.conversions.append(conversion)
        result.subtotal += to_fiat(charged, rate)
        result.total += conversion.total
    return result


def _draw(lines: Sequence[UsageLine], segments: Sequence[CommitSegment]) -> list[AppliedLine]:
    pieces = {
        f"{i}:{j}": (line, piece)
        for i, line in enumerate(lines)
        for j, piece in enumerate(line.charge_slices())
        if piece.amount > 0
    }
    charges = [ChargeLine(key, line.product.id, piece.amount) for key, (line, piece) in pieces.items()]
    by_segment = {s.segment_id: s for s in segments}
    seats = _seat_charges(segments, pieces)
    balances = [
        Balance(
            id=s.segment_id,
            kind=s.kind,
            available=s.available,
            priority=s.priority,
            is_free=s.is_free,
            applicable_product_count=s.scope_size,
            access_ends_us=s.ends_us,
            access_starts_us=s.starts_us,
            applies_to=_scope(s, pieces),
            among=None if s.seat is None else seats.get((s.seat.group_key, s.seat.seat_id), ()),
            is_rollover=s.is_rollover,
        )
        for s in segments
        if s.available > 0
    ]
    return _per_segment(draw_down(charges, balances), by_segment)


def _seat_charges(
    segments: Sequence[CommitSegment], pieces: Mapping[str, tuple[UsageLine, ChargeSlice]]
) -> dict[tuple[str, str | None], tuple[str, ...]]:
    """The charges carrying each seat, per seat group key the segments name (in the charges'
    order): a seat's balance looks at these only."""
    keys = {s.seat.group_key for s in segments if s.seat is not None}
    found: dict[tuple[str, str | None], list[str]] = {}
    for group_key in keys:
        for charge_key, (line, _piece) in pieces.items():
            values = {line.pricing_group_values.get(group_key), line.presentation_group_values.get(group_key)}
            for value in values - {None}:
                found.setdefault((group_key, value), []).append(charge_key)
    return {seat: tuple(charge_keys) for seat, charge_keys in found.items()}


def _scope(
    segment: CommitSegment, pieces: Mapping[str, tuple[UsageLine, ChargeSlice]]
) -> Callable[[ChargeLine], bool]:
    """A segment covers a charge of a product in its scope, due to usage while it was accessible."""

    def covers(charge: ChargeLine) -> bool:
        line, piece = pieces[charge.key]
        in_time = piece.start_us < segment.ends_us and segment.starts_us < piece.end_us
        return in_time and segment.applies_to(line)

    return covers


def _per_segment(
    applications: Sequence[Application], segments: Mapping[str, CommitSegment]
) -> list[AppliedLine]:
    totals: dict[str, Decimal] = {}
    for application in applications:
        totals[application.balance_id] = totals.get(application.balance_id, ZERO) + application.amount
    return [AppliedLine(segments[segment_id], amount) for segment_id, amount in totals.items() if amount > 0]


def _grouped(
    pricing: ProductPricing, usage: Sequence[tuple[Group, Aggregate]]
) -> list[tuple[tuple[tuple[tuple[str, str | None], ...], tuple[tuple[str, str | None], ...]], Aggregate]]:
    """Usage merged per (pricing group values, presentation group values) of the product."""
    merged: dict[
        tuple[tuple[tuple[str, str | None], ...], tuple[tuple[str, str | None], ...]], Aggregate
    ] = {}
    for group, aggregate in usage:
        key = (
            tuple((k, group.get(k)) for k in pricing.product.pricing_group_key),
            tuple((k, group.get(k)) for k in pricing.product.presentation_group_key),
        )
        total = merged.get(key)
        if total is None:
            total = merged[key] = Aggregate()
        total.merge(aggregate)
    return sorted(merged.items(), key=lambda item: tuple(v or "" for _k, v in item[0][0] + item[0][1]))


def _price_group(
    pricing: ProductPricing,
    pricing_values: tuple[tuple[str, str | None], ...],
    presentation_values: tuple[tuple[str, str | None], ...],
    aggregate: Aggregate,
    interval: PricingInterval,
) -> UsageLine | None:
    raw = aggregate.value(pricing.aggregation)
    if raw is None:
        return None
    values = {k: v for k, v in pricing_values if v is not None}
    rate = _rate_for(pricing.rates, values)
    if rate is None:
        return None  # no rate: usage of this product is not billed
    overrides = [o for o in pricing.overrides if o.applies_to_group(values)]
    if not _entitled(rate.entitled, overrides):
        return None
    product = pricing.product
    quantity = billable_quantity(raw, product.quantity_conversion, product.quantity_rounding)
    price = apply_overrides(rate.price, overrides, pricing.explicit_override_priority)
    charge = price.charge(quantity)
    overwrite = winning_overwrite(overrides)
    credit_type_id = rate.credit_type_id
    if overwrite is not None and overwrite.overwrite_credit_type_id is not None:
        credit_type_id = overwrite.overwrite_credit_type_id
    return UsageLine(
        product=product,
        credit_type_id=credit_type_id,
        quantity=quantity,
        unit_price=charge.unit_price,
        total=charge.total,
        start_us=interval.start_us,
        end_us=interval.end_us,
        pricing_group_values=values,
        presentation_group_values=dict(presentation_values),
        tiers=charge.tiers,
        aggregation=pricing.aggregation,
        price=price,
    )


def subscription_line(
    subscription: SubscriptionTerms,
    charge: PeriodCharge,
    product: ProductState,
    rates: Sequence[RateInForce],
    overrides: Sequence[Override],
    explicit_override_priority: bool,
) -> UsageLine | None:
    """A subscription's charge priced at the rate of its product and billing frequency in force
    at the charge's start, with the contract's overrides; None when no rate is entitled then."""
    rate = next(
        (
            r
            for r in rates
            if r.product_id == subscription.product_id
            and r.billing_frequency == subscription.billing_frequency
        ),
        None,
    )
    if rate is None or not _entitled(rate.entitled, overrides):
        return None
    price = apply_overrides(rate.price, overrides, explicit_override_priority)
    overwrite = winning_overwrite(overrides)
    credit_type_id = rate.credit_type_id
    if overwrite is not None and overwrite.overwrite_credit_type_id is not None:
        credit_type_id = overwrite.overwrite_credit_type_id
    full_period = price.charge(charge.quantity)
    return UsageLine(
        product=product,
        credit_type_id=credit_type_id,
        quantity=charge.quantity,
        unit_price=full_period.unit_price,
        total=charge.amount(full_period.total, subscription.rounding),
        start_us=charge.start_us,
        end_us=charge.end_us,
        pricing_group_values={},
        presentation_group_values={},
        price=price,
        subscription=subscription,
        is_prorated=charge.is_prorated,
    )


def _entitled(rate_entitled: bool, overrides: Sequence[Override]) -> bool:
    """An override that says whether the product is entitled wins over the rate card."""
    said = [o.entitled for o in overrides if o.entitled is not None]
    return said[-1] if said else rate_entitled


def _rate_for(rates: Sequence[RateInForce], values: Mapping[str, str]) -> RateInForce | None:
    for rate in rates:
        if dict(rate.pricing_group_values) == dict(values):
            return rate
    return None


def _specifier_matches(spec: Mapping[str, object], line: UsageLine) -> bool:
    product_id = spec.get("product_id")
    if product_id is not None and product_id != line.product.id:
        return False
    tags = spec.get("product_tags")
    if isinstance(tags, list) and tags and not set(tags) <= set(line.product.tags):
        return False
    for name, have in (
        ("pricing_group_values", line.pricing_group_values),
        ("presentation_group_values", line.presentation_group_values),
    ):
        wanted = spec.get(name)
        if isinstance(wanted, dict) and any(have.get(k) != v for k, v in wanted.items()):
            return False
    return True
