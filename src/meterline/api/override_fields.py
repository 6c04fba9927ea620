"""Request models of contract overrides (rules: domain/override_rules.py, checked by the store)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from meterline.api.catalog_fields import FiniteAmount, HourInstant, NonNegativeAmount, PositiveAmount
from meterline.api.contract_fields import MAX_ITEMS, NonEmpty, NotSupported, upper
from meterline.api.routes.common import StrictModel
from meterline.domain.ids import new_id
from meterline.domain.override_rules import OverrideSpec, OverrideTarget, OverwriteRate
from meterline.domain.pricing import Tier


class OverrideSpecifierIn(StrictModel):
    product_id: NonEmpty | None = None
    product_tags: list[NonEmpty] | None = None
    pricing_group_values: dict[str, NonEmpty] | None = None
    presentation_group_values: NotSupported = None
    billing_frequency: Literal["MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY"] | None = None  # subscription rates
    commit_ids: NotSupported = None  # commit-specific overrides
    recurring_commit_ids: NotSupported = None
    any_commit_or_credit_ids: NotSupported = None

    def target(self) -> OverrideTarget:
        return OverrideTarget(
            self.product_id, tuple(self.product_tags or ()), self.pricing_group_values, self.billing_frequency
        )


class TierIn(StrictModel):
    price: NonNegativeAmount
    size: PositiveAmount | None = None


class OverwriteRateIn(StrictModel):
    rate_type: str
    price: NonNegativeAmount | None = None
    tiers: list[TierIn] | None = Field(default=None, max_length=MAX_ITEMS)
    credit_type_id: NonEmpty | None = None
    custom_rate: NotSupported = None
    is_prorated: NotSupported = None
    quantity: NotSupported = None

    @field_validator("rate_type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return upper(value)

    def rate(self) -> OverwriteRate:
        tiers = None if self.tiers is None else tuple(Tier(t.price, t.size) for t in self.tiers)
        return OverwriteRate(self.rate_type, self.price, tiers, self.credit_type_id)


class OverrideIn(StrictModel):
    starting_at: HourInstant
    ending_before: HourInstant | None = None
    type: Literal["OVERWRITE", "MULTIPLIER", "TIERED"]
    product_id: NonEmpty | None = None
    applicable_product_tags: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    override_specifiers: list[OverrideSpecifierIn] | None = Field(default=None, max_length=MAX_ITEMS)
    multiplier: FiniteAmount | None = None
    overwrite_rate: OverwriteRateIn | None = None
    priority: FiniteAmount | None = None
    entitled: bool | None = None
    is_commit_specific: bool | None = None
    target: NotSupported = None  # only for commit-specific overrides
    tiers: NotSupported = None  # only for TIERED overrides

    @field_validator("type", mode="before")
    @classmethod
    def _supported_type(cls, value: Any) -> Any:
        value = upper(value)
        if value == "TIERED":
            raise ValueError("meterline does not support TIERED overrides yet; use OVERWRITE or MULTIPLIER")
        return value

    @field_validator("is_commit_specific")
    @classmethod
    def _not_commit_specific(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("meterline does not support commit-specific overrides yet")
        return value

    def spec(self) -> OverrideSpec:
        return OverrideSpec(
            id=new_id(),
            type=self.type,
            starting_at_us=self.starting_at,
            ending_before_us=self.ending_before,
            product_id=self.product_id,
            applicable_product_tags=tuple(self.applicable_product_tags or ()),
            specifiers=tuple(s.target() for s in self.override_specifiers or ()),
            multiplier=self.multiplier,
            overwrite_rate=self.overwrite_rate.rate() if self.overwrite_rate is not None else None,
            priority=self.priority,
            entitled=self.entitled,
        )
