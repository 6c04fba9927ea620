"""Rates on a rate card: which prices meterline accepts, and how a new rate meets older ones.

A rate prices one product (and, for products with a pricing group key, one combination of pricing
group values) over a time range [starting_at, ending_before). When a new rate for the same product
and pricing group values overlaps older ones, the newer rate wins over its whole range, as in
Metronome where adding a rate with a later `starting_at` schedules a price change: an older rate
keeps only the parts of its range the new one does not cover. Usually that truncates the older
rate's `ending_before` to the new `starting_at`; an older rate entirely inside the new range is
dropped; and if the new rate ends before the older one did, the older price resumes at the new
`ending_before`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from meterline.domain.errors import InvalidInput
from meterline.domain.pricing import PriceSpec, Tier

SUPPORTED_RATE_TYPES = ("FLAT", "TIERED")
UNSUPPORTED_RATE_TYPES = ("PERCENTAGE", "SUBSCRIPTION", "TIERED_PERCENTAGE", "CUSTOM")


@dataclass(frozen=True, slots=True)
class Span:
    """[start_us, end_us); end_us None is open-ended."""

    start_us: int
    end_us: int | None

    def contains(self, at_us: int) -> bool:
        return self.start_us <= at_us and (self.end_us is None or at_us < self.end_us)

    def overlaps(self, other: Span) -> bool:
        starts_before_other_ends = other.end_us is None or self.start_us < other.end_us
        other_starts_before_self_ends = self.end_us is None or other.start_us < self.end_us
        return starts_before_other_ends and other_starts_before_self_ends


@dataclass(frozen=True, slots=True)
class RateInForce:
    """A rate card's price for one product (and pricing group values) at one instant."""

    rate_card_id: str
    product_id: str
    pricing_group_values: Mapping[str, str]
    entitled: bool
    credit_type_id: str
    price: PriceSpec
    starting_at_us: int
    ending_before_us: int | None
    billing_frequency: str | None = None  # rates of SUBSCRIPTION products only


def remaining_after(older: Span, newer: Span) -> list[Span]:
    """What is left of an older rate's range once a newer rate takes over its own range."""
    if not older.overlaps(newer):
        return [older]
    left: list[Span] = []
    if older.start_us < newer.start_us:
        left.append(Span(older.start_us, newer.start_us))
    if newer.end_us is not None and (older.end_us is None or newer.end_us < older.end_us):
        left.append(Span(newer.end_us, older.end_us))
    return left


def refuse_unsupported_rate_type(rate_type: str) -> None:
    if rate_type in UNSUPPORTED_RATE_TYPES:
        raise InvalidInput(f"rate_type: meterline does not support {rate_type} rates yet; use FLAT or TIERED")
    if rate_type not in SUPPORTED_RATE_TYPES:
        raise InvalidInput(f"rate_type: must be one of {', '.join(SUPPORTED_RATE_TYPES)}")


def price_spec(rate_type: str, price: Decimal | None, tiers: Sequence[Tier] | None) -> PriceSpec:
    """The price a FLAT or TIERED rate defines, after checking it is complete and consistent."""
    refuse_unsupported_rate_type(rate_type)
    if rate_type == "FLAT":
        if tiers:
            raise InvalidInput("tiers: only TIERED rates have tiers")
        if price is None:
            raise InvalidInput("price: is required for FLAT rates")
        if price < 0:
            raise InvalidInput("price: must be greater than or equal to 0")
        return PriceSpec(price=price)
    if price is not None:
        raise InvalidInput("price: TIERED rates are priced by their tiers; omit price")
    checked = check_tiers(tiers or ())
    return PriceSpec(tiers=checked)


def check_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    if not tiers:
        raise InvalidInput("tiers: a TIERED rate needs at least one tier")
    last = len(tiers) - 1
    for index, tier in enumerate(tiers):
        if tier.price < 0:
            raise InvalidInput(f"tiers.{index}.price: must be greater than or equal to 0")
        if tier.size is None and index != last:
            raise InvalidInput(f"tiers.{index}.size: is required on every tier but the last")
        if tier.size is not None and tier.size <= 0:
            raise InvalidInput(f"tiers.{index}.size: must be greater than 0")
    return tuple(tiers)


def check_billing_frequency(product_type: str, rate_type: str, billing_frequency: str | None) -> None:
    """A SUBSCRIPTION product is priced per unit and billing period: a FLAT price for each billing
    frequency it is sold at. Other products have no billing frequency."""
    if product_type != "SUBSCRIPTION":
        if billing_frequency is not None:
            raise InvalidInput(
                "billing_frequency: only rates of SUBSCRIPTION products have a billing frequency"
            )
        return
    if rate_type != "FLAT":
        raise InvalidInput(
            "rate_type: a SUBSCRIPTION product's rate must be FLAT (a price per unit and period)"
        )
    if billing_frequency is None:
        raise InvalidInput("billing_frequency: is required on the rates of SUBSCRIPTION products")


def check_span(span: Span) -> None:
    if span.end_us is not None and span.end_us <= span.start_us:
        raise InvalidInput("ending_before: must be after starting_at")


def check_pricing_group_values(values: Mapping[str, str], pricing_group_key: Sequence[str]) -> None:
    """A rate names a value for every key the product prices by, and for no other key."""
    expected, given = set(pricing_group_key), set(values)
    if given == expected:
        return
    if not expected:
        raise InvalidInput("pricing_group_values: the product has no pricing_group_key, so omit them")
    missing, unknown = sorted(expected - given), sorted(given - expected)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unknown:
        problems.append(f"{', '.join(unknown)} not in the product's pricing_group_key")
    raise InvalidInput(
        f"pricing_group_values: must give a value for each of {', '.join(sorted(expected))} "
        f"({'; '.join(problems)})"
    )
