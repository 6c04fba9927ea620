"""Pricing a quantity: quantity conversion and rounding, FLAT and TIERED rates, overrides,
and conversion of custom pricing units to fiat. Exact Decimal arithmetic throughout.

Tiered rates are graduated: each tier prices the units that fall inside it, the last tier is
unbounded. Because the whole period's quantity is priced at once (never event by event), the
tiered total of a period does not depend on how its usage arrived.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from enum import StrEnum

ZERO = Decimal(0)


class ConversionOperation(StrEnum):
    MULTIPLY = "MULTIPLY"
    DIVIDE = "DIVIDE"


class RoundingMethod(StrEnum):
    ROUND_UP = "ROUND_UP"
    ROUND_DOWN = "ROUND_DOWN"
    ROUND_HALF_UP = "ROUND_HALF_UP"


_ROUNDING = {
    RoundingMethod.ROUND_UP: ROUND_UP,
    RoundingMethod.ROUND_DOWN: ROUND_DOWN,
    RoundingMethod.ROUND_HALF_UP: ROUND_HALF_UP,
}


@dataclass(frozen=True, slots=True)
class QuantityConversion:
    factor: Decimal
    operation: ConversionOperation

    def apply(self, quantity: Decimal) -> Decimal:
        if self.operation is ConversionOperation.MULTIPLY:
            return quantity * self.factor
        return quantity / self.factor


@dataclass(frozen=True, slots=True)
class QuantityRounding:
    decimal_places: int
    method: RoundingMethod

    def apply(self, quantity: Decimal) -> Decimal:
        return quantity.quantize(Decimal(1).scaleb(-self.decimal_places), rounding=_ROUNDING[self.method])


def billable_quantity(
    raw: Decimal, conversion: QuantityConversion | None, rounding: QuantityRounding | None
) -> Decimal:
    """A metric's value as the product bills it: converted first, then rounded (Metronome's order)."""
    quantity = conversion.apply(raw) if conversion else raw
    return rounding.apply(quantity) if rounding else quantity


@dataclass(frozen=True, slots=True)
class Tier:
    price: Decimal
    size: Decimal | None = None  # None: unbounded (only the last tier)


@dataclass(frozen=True, slots=True)
class TierCharge:
    """One tier's share of a tiered charge, as an invoice shows it."""

    price: Decimal
    quantity: Decimal
    starting_at: Decimal
    subtotal: Decimal


@dataclass(frozen=True, slots=True)
class Charge:
    quantity: Decimal
    total: Decimal
    unit_price: Decimal | None
    tiers: tuple[TierCharge, ...] = ()


def flat_charge(quantity: Decimal, price: Decimal) -> Charge:
    return Charge(quantity=quantity, total=quantity * price, unit_price=price)


def tiered_charge(quantity: Decimal, tiers: Sequence[Tier]) -> Charge:
    if not tiers:
        raise ValueError("a tiered rate needs at least one tier")
    remaining = quantity
    start = ZERO
    shares: list[TierCharge] = []
    for index, tier in enumerate(tiers):
        last = index == len(tiers) - 1
        in_tier = remaining if last or tier.size is None else min(remaining, tier.size)
        if in_tier > 0 or not shares:
            shares.append(TierCharge(tier.price, in_tier, start, in_tier * tier.price))
        remaining -= in_tier
        if remaining <= 0 or tier.size is None:
            break
        start += tier.size
    total = sum((s.subtotal for s in shares), ZERO)
    return Charge(quantity=quantity, total=total, unit_price=None, tiers=tuple(shares))


@dataclass(frozen=True, slots=True)
class PriceSpec:
    """A rate as it applies after overrides: FLAT with `price`, or TIERED with `tiers`."""

    price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()

    @property
    def is_tiered(self) -> bool:
        return bool(self.tiers)

    def charge(self, quantity: Decimal) -> Charge:
        if self.is_tiered:
            return tiered_charge(quantity, self.tiers)
        return flat_charge(quantity, self.price if self.price is not None else ZERO)

    def multiplied(self, multiplier: Decimal) -> PriceSpec:
        if self.is_tiered:
            return PriceSpec(tiers=tuple(Tier(t.price * multiplier, t.size) for t in self.tiers))
        return PriceSpec(price=(self.price or ZERO) * multiplier)


@dataclass(frozen=True, slots=True)
class Override:
    """OVERWRITE replaces the rate; MULTIPLIER scales it. Overwrites beat multipliers.

    `pricing_group_values` narrows it to usage with those values; an overwrite may price in its
    own credit type; `entitled` (when given) overrides the rate's entitlement.
    """

    overwrite: PriceSpec | None = None
    multiplier: Decimal | None = None
    priority: Decimal | None = None
    pricing_group_values: Mapping[str, str] | None = None
    overwrite_credit_type_id: str | None = None
    entitled: bool | None = None

    def applies_to_group(self, values: Mapping[str, str]) -> bool:
        return self.pricing_group_values is None or all(
            values.get(k) == v for k, v in self.pricing_group_values.items()
        )


def winning_overwrite(overrides: Sequence[Override]) -> Override | None:
    """The overwrite in force, if any: the lowest priority number wins, then the first given."""
    overwrites = [o for o in overrides if o.overwrite is not None]
    return min(overwrites, key=lambda o: _priority_key(o.priority)) if overwrites else None


def apply_overrides(
    rate: PriceSpec, overrides: Sequence[Override], explicit_priority: bool = False
) -> PriceSpec:
    """The price in force once the contract's applicable overrides are applied.

    Among overwrites the lowest priority number wins (then the first given). Without an
    overwrite, multipliers apply: by default the lowest multiplier (Metronome's
    LOWEST_MULTIPLIER), or with explicit prioritization the one with the lowest priority number.
    """
    chosen = winning_overwrite(overrides)
    if chosen is not None:
        assert chosen.overwrite is not None
        return chosen.overwrite
    multipliers = [o for o in overrides if o.multiplier is not None]
    if not multipliers:
        return rate
    if explicit_priority:
        pick = min(multipliers, key=lambda o: _priority_key(o.priority))
    else:
        pick = min(multipliers, key=lambda o: o.multiplier or ZERO)
    assert pick.multiplier is not None
    return rate.multiplied(pick.multiplier)


def _priority_key(priority: Decimal | None) -> Decimal:
    return priority if priority is not None else Decimal("Infinity")


def to_fiat(amount_in_custom_units: Decimal, fiat_per_custom_unit: Decimal) -> Decimal:
    """Convert a charge priced in a custom pricing unit to the rate card's fiat credit type."""
    return amount_in_custom_units * fiat_per_custom_unit
