"""Request models of a contract's `recurring_commits` and `recurring_credits` (the SDK's shapes), and
of v2 contracts/edit's updates of them.

A recurring commit's `invoice_amount` bills each period's commit on a SCHEDULED invoice (tied to
a subscription, as its quantity goes). What meterline does not build is refused with a 400
naming the field: QUANTITY access and COMMIT_RATE. `rollover_fraction` is passed down to each period's commit,
which rolls over that share of what it left unused when the contract transitions.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from meterline.api.catalog_fields import FiniteAmount, Fraction, HourInstant, PositiveAmount
from meterline.api.contract_fields import (
    MAX_ITEMS,
    Name,
    NonEmpty,
    NotSupported,
    SpecifierIn,
    product_scope,
    refuse_commit_rate,
    refuse_quantity_access,
)
from meterline.api.routes.common import StrictModel
from meterline.domain.contracts import CREDIT, PREPAID
from meterline.domain.errors import InvalidInput
from meterline.domain.ids import USD_CENTS_CREDIT_TYPE_ID
from meterline.domain.recurring import InvoiceAmount, RecurringSpec, Rounding, SubscriptionLink
from meterline.services.recurring import RecurringUpdate


class AccessAmountIn(StrictModel):
    unit_price: PositiveAmount
    quantity: PositiveAmount | None = None  # required unless the subscription's (subscription_config)
    credit_type_id: str = USD_CENTS_CREDIT_TYPE_ID
    access_type: Literal["SPEND", "QUANTITY"] | None = None

    _spend_only = field_validator("access_type")(refuse_quantity_access)


class InvoiceAmountIn(StrictModel):
    """What each whole period's commit is billed; tied to a subscription, `unit_price` per unit of
    its quantity (`quantity` then omitted, as in access_amount)."""

    credit_type_id: NonEmpty
    unit_price: PositiveAmount
    quantity: PositiveAmount | None = None

    def invoice_amount(self, path: str, linked: bool) -> InvoiceAmount:
        if linked and self.quantity is not None:
            raise InvalidInput(
                f"{path}.invoice_amount.quantity: with subscription_config the quantity is the "
                "subscription's; omit it"
            )
        if not linked and self.quantity is None:
            raise InvalidInput(
                f"{path}.invoice_amount.quantity: is required unless subscription_config is given"
            )
        return InvoiceAmount(self.credit_type_id, self.unit_price, self.quantity)


class CommitDurationIn(StrictModel):
    value: Annotated[int, Field(ge=1, le=1000, strict=False)]
    unit: Literal["PERIODS"] = "PERIODS"

    @field_validator("value", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        if isinstance(value, Decimal | float) and value != int(value):
            raise ValueError("must be a whole number of periods")
        return int(value) if isinstance(value, Decimal | float) else value


class RoundingIn(StrictModel):
    decimal_places: Annotated[int, Field(ge=-20, le=20)]
    rounding_method: Literal["HALF_UP", "FLOOR", "CEILING"]

    @field_validator("decimal_places", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        if isinstance(value, Decimal | float) and value != int(value):
            raise ValueError("must be a whole number")
        return int(value) if isinstance(value, Decimal | float) else value

    def rounding(self) -> Rounding:
        return Rounding(self.decimal_places, self.rounding_method)


class CreditRoundingIn(StrictModel):
    access: RoundingIn | None = None


class CommitRoundingIn(CreditRoundingIn):
    invoice: RoundingIn | None = None


class SeatIncreaseIn(StrictModel):
    is_prorated: bool


class SubscriptionConfigIn(StrictModel):
    subscription_id: NonEmpty  # the temporary_id of a subscription of the same request
    apply_seat_increase_config: SeatIncreaseIn
    # POOLED: one balance of the amount per unit times the quantity; INDIVIDUAL: a balance per
    # seat of a SEAT_BASED subscription, drawn by that seat's usage only.
    allocation: Literal["POOLED", "INDIVIDUAL"] = "POOLED"

    def link(self) -> SubscriptionLink:
        return SubscriptionLink(
            self.subscription_id, self.apply_seat_increase_config.is_prorated, self.allocation
        )


class RecurringFields(StrictModel):
    access_amount: AccessAmountIn
    commit_duration: CommitDurationIn
    priority: FiniteAmount
    product_id: NonEmpty
    starting_at: HourInstant
    ending_before: HourInstant | None = None
    applicable_product_ids: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    applicable_product_tags: list[NonEmpty] | None = Field(default=None, max_length=MAX_ITEMS)
    specifiers: list[SpecifierIn] | None = Field(default=None, max_length=MAX_ITEMS)
    description: str | None = None
    name: Name | None = None
    proration: Literal["NONE", "FIRST", "LAST", "FIRST_AND_LAST"] = "FIRST_AND_LAST"
    rate_type: Literal["COMMIT_RATE", "LIST_RATE"] = "LIST_RATE"
    recurrence_frequency: Literal["MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY", "DAILY"] | None = None
    rollover_fraction: Fraction | None = None
    hierarchy_configuration: NotSupported = None
    netsuite_sales_order_id: NotSupported = None
    subscription_config: SubscriptionConfigIn | None = None
    temporary_id: NotSupported = None

    _list_rate_only = field_validator("rate_type", mode="before")(refuse_commit_rate)

    def _spec(self, kind: str, rounding: RoundingIn | None, path: str, **invoiced: Any) -> RecurringSpec:
        access = self.access_amount
        linked = self.subscription_config
        if linked is None and access.quantity is None:
            raise InvalidInput(
                f"{path}.access_amount.quantity: is required unless subscription_config is given"
            )
        if linked is not None and access.quantity is not None:
            raise InvalidInput(
                f"{path}.access_amount.quantity: with subscription_config the quantity is the "
                "subscription's; omit it"
            )
        return RecurringSpec(
            kind=kind,
            product_id=self.product_id,
            priority=self.priority,
            starting_at_us=self.starting_at,
            ending_before_us=self.ending_before,
            unit_price=access.unit_price,
            quantity=access.quantity,
            credit_type_id=access.credit_type_id,
            duration_periods=self.commit_duration.value,
            recurrence_frequency=self.recurrence_frequency,
            proration=self.proration,
            rounding=None if rounding is None else rounding.rounding(),
            name=self.name,
            description=self.description,
            **product_scope(self),
            subscription=None if linked is None else linked.link(),
            rollover_fraction=self.rollover_fraction,
            **invoiced,
        )


class RecurringCommitIn(RecurringFields):
    invoice_amount: InvoiceAmountIn | None = None
    proration_rounding: CommitRoundingIn | None = None

    def spec(self, path: str) -> RecurringSpec:
        rounding = self.proration_rounding or CommitRoundingIn()
        linked = self.subscription_config is not None
        invoice = None if self.invoice_amount is None else self.invoice_amount.invoice_amount(path, linked)
        invoice_rounding = None if rounding.invoice is None else rounding.invoice.rounding()
        return self._spec(PREPAID, rounding.access, path, invoice=invoice, invoice_rounding=invoice_rounding)


class RecurringCreditIn(RecurringFields):
    proration_rounding: CreditRoundingIn | None = None

    def spec(self, path: str) -> RecurringSpec:
        rounding = self.proration_rounding.access if self.proration_rounding is not None else None
        return self._spec(CREDIT, rounding, path)


class AmountUpdateIn(StrictModel):
    unit_price: PositiveAmount | None = None
    quantity: PositiveAmount | None = None


class RecurringUpdateFields(StrictModel):
    """v2 contracts/edit `update_recurring_commits` / `update_recurring_credits`."""

    access_amount: AmountUpdateIn | None = None
    ending_before: HourInstant | None = None
    rate_type: Literal["COMMIT_RATE", "LIST_RATE"] | None = None

    _list_rate_only = field_validator("rate_type", mode="before")(refuse_commit_rate)

    def _update(self, recurring_id: str, **more: Any) -> RecurringUpdate:
        access = self.access_amount
        return RecurringUpdate(
            recurring_id=recurring_id,
            unit_price=None if access is None else access.unit_price,
            quantity=None if access is None else access.quantity,
            set_end="ending_before" in self.model_fields_set,
            ending_before_us=self.ending_before,
            **more,
        )


class RecurringCommitUpdateIn(RecurringUpdateFields):
    recurring_commit_id: NonEmpty
    invoice_amount: AmountUpdateIn | None = None
    proration_rounding: CommitRoundingIn | None = None

    def update(self) -> RecurringUpdate:
        invoiced = self.invoice_amount
        rounding = self.proration_rounding
        return self._update(
            self.recurring_commit_id,
            invoice_unit_price=None if invoiced is None else invoiced.unit_price,
            invoice_quantity=None if invoiced is None else invoiced.quantity,
            set_rounding="proration_rounding" in self.model_fields_set,
            rounding=None if rounding is None or rounding.access is None else rounding.access.rounding(),
            invoice_rounding=None
            if rounding is None or rounding.invoice is None
            else rounding.invoice.rounding(),
        )


class RecurringCreditUpdateIn(RecurringUpdateFields):
    recurring_credit_id: NonEmpty
    proration_rounding: CreditRoundingIn | None = None

    def update(self) -> RecurringUpdate:
        rounding = self.proration_rounding
        return self._update(
            self.recurring_credit_id,
            set_rounding="proration_rounding" in self.model_fields_set,
            rounding=None if rounding is None or rounding.access is None else rounding.access.rounding(),
        )
