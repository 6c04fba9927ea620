"""Contract overrides as meterline keeps them, the rules they follow, and the terms the engine reads.

An override changes a rate card's price on one contract for a time range: OVERWRITE replaces
the rate (FLAT or TIERED), MULTIPLIER scales it. It targets products in one of three ways:
`product_id`, `applicable_product_tags` (products with any of the tags), or
`override_specifiers` (each a product, one tag and/or pricing group values). The engine sees one
OverrideTerms per specifier, all carrying the override's id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from meterline.domain.commit_rules import field_path
from meterline.domain.contracts import OverrideTerms
from meterline.domain.errors import InvalidInput
from meterline.domain.pricing import PriceSpec, Tier
from meterline.domain.rates import price_spec

OVERWRITE = "OVERWRITE"
MULTIPLIER = "MULTIPLIER"
TYPES = (OVERWRITE, MULTIPLIER)


@dataclass(frozen=True, slots=True)
class OverrideTarget:
    """One override specifier: the override applies to usage (or a subscription's rate, of
    `billing_frequency`) matching every given field."""

    product_id: str | None = None
    product_tags: tuple[str, ...] = ()
    pricing_group_values: Mapping[str, str] | None = None
    billing_frequency: str | None = None  # only subscription rates have one

    def is_empty(self) -> bool:
        return not (
            self.product_id or self.product_tags or self.pricing_group_values or self.billing_frequency
        )


@dataclass(frozen=True, slots=True)
class OverwriteRate:
    rate_type: str
    price: Decimal | None = None
    tiers: tuple[Tier, ...] | None = None
    credit_type_id: str | None = None  # None: the overridden rate's own credit type

    def spec(self) -> PriceSpec:
        return price_spec(self.rate_type, self.price, self.tiers)


@dataclass(frozen=True, slots=True)
class OverrideSpec:
    id: str
    type: str
    starting_at_us: int
    ending_before_us: int | None = None
    product_id: str | None = None
    applicable_product_tags: tuple[str, ...] = ()
    specifiers: tuple[OverrideTarget, ...] = ()
    multiplier: Decimal | None = None
    overwrite_rate: OverwriteRate | None = None
    priority: Decimal | None = None
    entitled: bool | None = None
    created_at_us: int | None = None  # added by an edit (None: created with its contract)

    def terms(self) -> list[OverrideTerms]:
        if self.specifiers:
            return [
                self._terms(s.product_id, s.product_tags, s.pricing_group_values, s.billing_frequency)
                for s in self.specifiers
            ]
        return [self._terms(self.product_id, self.applicable_product_tags, None, None)]

    def _terms(
        self,
        product_id: str | None,
        tags: tuple[str, ...],
        pricing_group_values: Mapping[str, str] | None,
        billing_frequency: str | None,
    ) -> OverrideTerms:
        overwrite = self.overwrite_rate
        return OverrideTerms(
            id=self.id,
            starting_at_us=self.starting_at_us,
            ending_before_us=self.ending_before_us,
            product_id=product_id,
            product_tags=frozenset(tags),
            pricing_group_values=pricing_group_values,
            billing_frequency=billing_frequency,
            multiplier=self.multiplier,
            overwrite=overwrite.spec() if overwrite else None,
            overwrite_credit_type_id=overwrite.credit_type_id if overwrite else None,
            priority=self.priority,
            entitled=self.entitled,
        )


def check_override(override: OverrideSpec, path: str, explicit_priority: bool) -> None:
    """`path` names the override in the request ("overrides.1"); `explicit_priority` is EXPLICIT."""
    if override.ending_before_us is not None and override.ending_before_us <= override.starting_at_us:
        raise InvalidInput(f"{field_path(path, 'ending_before')}: must be after starting_at")
    _check_target(override, path)
    if override.type == MULTIPLIER:
        _check_multiplier(override, path, explicit_priority)
    elif override.type == OVERWRITE:
        _check_overwrite(override, path)
    else:
        raise InvalidInput(f"{field_path(path, 'type')}: must be one of {', '.join(TYPES)}")
    if override.priority is not None and override.priority <= 0:
        raise InvalidInput(f"{field_path(path, 'priority')}: must be greater than 0")


def _check_target(override: OverrideSpec, path: str) -> None:
    given = [
        name
        for name, value in (
            ("product_id", override.product_id),
            ("applicable_product_tags", override.applicable_product_tags),
            ("override_specifiers", override.specifiers),
        )
        if value
    ]
    if len(given) != 1:
        problem = "give one of" if not given else "give only one of"
        raise InvalidInput(f"{path}: {problem} product_id, applicable_product_tags or override_specifiers")
    for index, target in enumerate(override.specifiers):
        where = field_path(path, "override_specifiers", index)
        if target.is_empty():
            raise InvalidInput(
                f"{where}: give at least one of product_id, product_tags, pricing_group_values or billing_frequency"
            )
        if len(target.product_tags) > 1:
            # Metronome matches products having all the tags; the engine matches any one tag.
            raise InvalidInput(
                f"{where}.product_tags: meterline does not support more than one tag per override "
                "specifier yet; use one specifier per tag only if any tag should match"
            )


def _check_multiplier(override: OverrideSpec, path: str, explicit_priority: bool) -> None:
    if override.overwrite_rate is not None:
        raise InvalidInput(f"{field_path(path, 'overwrite_rate')}: only OVERWRITE overrides have one")
    if override.multiplier is None:
        raise InvalidInput(f"{field_path(path, 'multiplier')}: is required for MULTIPLIER overrides")
    if override.multiplier <= 0:
        raise InvalidInput(f"{field_path(path, 'multiplier')}: must be greater than 0")
    if explicit_priority and override.priority is None:
        raise InvalidInput(
            f"{field_path(path, 'priority')}: is required for MULTIPLIER overrides when "
            "multiplier_override_prioritization is EXPLICIT"
        )


def _check_overwrite(override: OverrideSpec, path: str) -> None:
    if override.multiplier is not None:
        raise InvalidInput(f"{field_path(path, 'multiplier')}: only MULTIPLIER overrides have one")
    if override.overwrite_rate is None:
        raise InvalidInput(f"{field_path(path, 'overwrite_rate')}: is required for OVERWRITE overrides")
    try:
        override.overwrite_rate.spec()
    except InvalidInput as error:
        raise InvalidInput(f"{field_path(path, 'overwrite_rate')}.{error.message}") from None
