"""Request models of a contract's `spend_threshold_configuration` and
`prepaid_balance_threshold_configuration` (the SDK's shapes), and how contracts show them back.

Payment gates that need a payment provider (STRIPE, EXTERNAL) are refused with a 400 naming the
field: meterline collects no payment, so it releases a bought commit at once (NONE). Tax a
provider would calculate, discounts, a custom pricing unit and balance exclusions would change
amounts and are not built: refused, naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from meterline.api.catalog_fields import FiniteAmount, Fraction, NonNegativeAmount, PositiveAmount
from meterline.api.contract_fields import (
    MAX_ITEMS,
    Name,
    NonEmpty,
    NotSupported,
    SpecifierIn,
    product_scope,
    refuse_commit_rate,
)
from meterline.api.routes.common import StrictModel
from meterline.domain.threshold_billing import PREPAID_BALANCE, SPEND, ThresholdCommit, ThresholdConfig
from meterline.store.commits import scope_json


class PaymentGateIn(StrictModel):
    payment_gate_type: Literal["NONE", "STRIPE", "EXTERNAL"]
    tax_type: Literal["NONE", "STRIPE", "ANROK", "PRECALCULATED"] | None = None
    precalculated_tax_config: NotSupported = None
    stripe_config: NotSupported = None

    @field_validator("payment_gate_type")
    @classmethod
    def _none_only(cls, value: str) -> str:
        if value != "NONE":
            raise ValueError(
                f"{value} needs a payment provider, which meterline does not connect to; use NONE "
                "(the commit is released at once and billed on its invoice)"
            )
        return value

    @field_validator("tax_type")
    @classmethod
    def _no_tax(cls, value: str | None) -> str | None:
        if value not in (None, "NONE"):
            raise ValueError("meterline does not calculate tax; use NONE")
        return value


class ThresholdCommitIn(StrictModel):
    product_id: NonEmpty
    name: Name | None = None
    description: str | None = None
    priority: FiniteAmount | None = None

    def commit(self, **fields: Any) -> ThresholdCommit:
        return ThresholdCommit(
            product_id=self.product_id,
            name=self.name,
            description=self.description,
            priority=self.priority,
            **fields,
        )


class DurationIn(StrictModel):
    unit: Literal["DAYS", "WEEKS", "MONTHS", "YEARS"]
    value: Annotated[int, Field(ge=1, le=100_000)]


class PrepaidCommitIn(ThresholdCommitIn):
    applicable_product_ids: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    applicable_product_tags: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    specifiers: list[SpecifierIn] | None = Field(default=None, max_length=MAX_ITEMS)
    duration: DurationIn | None = None
    rate_type: Literal["COMMIT_RATE", "LIST_RATE"] = "LIST_RATE"
    rollover_fraction: Fraction | None = None  # each recharge rolls over when the contract transitions

    _list_rate_only = field_validator("rate_type", mode="before")(refuse_commit_rate)

    def prepaid_commit(self) -> ThresholdCommit:
        duration = self.duration or DurationIn(unit="YEARS", value=1)
        return self.commit(
            **product_scope(self),
            duration_unit=duration.unit,
            duration_value=duration.value,
            rollover_fraction=self.rollover_fraction,
        )


class SpendThresholdIn(StrictModel):
    commit: ThresholdCommitIn
    is_enabled: bool
    payment_gate_config: PaymentGateIn
    threshold_amount: PositiveAmount
    discount_configuration: NotSupported = None

    def config(self) -> ThresholdConfig:
        return ThresholdConfig(SPEND, self.commit.commit(), self.is_enabled, self.threshold_amount)


class PrepaidBalanceThresholdIn(StrictModel):
    commit: PrepaidCommitIn
    is_enabled: bool
    payment_gate_config: PaymentGateIn
    recharge_to_amount: PositiveAmount
    threshold_amount: NonNegativeAmount
    custom_credit_type_id: NotSupported = None
    discount_configuration: NotSupported = None
    threshold_balance_specifiers: NotSupported = None

    def config(self) -> ThresholdConfig:
        return ThresholdConfig(
            PREPAID_BALANCE,
            self.commit.prepaid_commit(),
            self.is_enabled,
            self.threshold_amount,
            recharge_to_amount=self.recharge_to_amount,
        )


def threshold_view(config: ThresholdConfig) -> dict[str, Any]:
    """The SDK's SpendThresholdConfiguration / PrepaidBalanceThresholdConfiguration."""
    commit = config.commit
    shown_commit: dict[str, Any] = {"product_id": commit.product_id}
    optional: dict[str, Any] = {
        "name": commit.name,
        "description": commit.description,
        "priority": commit.priority,
    }
    if config.kind == PREPAID_BALANCE:
        optional.update(
            {
                **scope_json(commit),
                "duration": {"unit": commit.duration_unit, "value": commit.duration_value},
                "rate_type": "LIST_RATE",
                "rollover_fraction": commit.rollover_fraction,
            }
        )
    shown_commit.update({k: v for k, v in optional.items() if v is not None})
    view: dict[str, Any] = {
        "commit": shown_commit,
        "is_enabled": config.is_enabled,
        "payment_gate_config": {"payment_gate_type": config.payment_gate_type},
        "threshold_amount": config.threshold_amount,
    }
    if config.recharge_to_amount is not None:
        view["recharge_to_amount"] = config.recharge_to_amount
    return view
